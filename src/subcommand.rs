//! What the `ferroturn SUBCOMMAND ...` helpers (`bench`, `jitsi`) share: parsing their own
//! command line with clap.

use std::process::ExitCode;

/// Parses `args` (the words after the subcommand) as `T`, naming the program `program` in help
/// and errors. `Err` carries the exit status after clap has printed its text: 2 for a usage
/// error, success for `--help` and `--version`.
pub fn parse<T: clap::Parser>(program: &str, args: &[String]) -> Result<T, ExitCode> {
    let argv = std::iter::once(program.to_string()).chain(args.iter().cloned());
    T::try_parse_from(argv).map_err(|e| {
        let _ = e.print();
        if e.use_stderr() {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser, Debug)]
    struct Demo {
        #[arg(long)]
        count: u32,
    }

    #[test]
    fn parses_and_maps_errors_to_exit_status_2() {
        let ok: Demo = parse("demo", &["--count".into(), "3".into()]).unwrap();
        assert_eq!(ok.count, 3);
        let bad = parse::<Demo>("demo", &["--count".into(), "x".into()]).unwrap_err();
        assert_eq!(bad, ExitCode::from(2));
        let help = parse::<Demo>("demo", &["--help".into()]).unwrap_err();
        assert_eq!(help, ExitCode::SUCCESS);
    }
}
