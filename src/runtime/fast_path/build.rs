//! Build script: compiles the kernel fast path's eBPF program (C, `relay.bpf.c`) with clang
//! when clang and the BPF headers (Debian's libbpf-dev) are installed. Without them the fast
//! path is compiled out (`kernel-fast-path = auto` then logs that it is unavailable, `on`
//! refuses to start), so a machine with only the Rust toolchain still builds and runs.

use std::path::PathBuf;
use std::process::Command;

const SOURCE: &str = "src/runtime/fast_path/bpf/relay.bpf.c";

fn main() {
    println!("cargo::rustc-check-cfg=cfg(ferroturn_fast_path)");
    println!("cargo::rerun-if-changed={SOURCE}");
    println!("cargo::rerun-if-changed=src/runtime/fast_path/build.rs");
    println!("cargo::rerun-if-env-changed=FERROTURN_CLANG");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let object = out.join("relay.bpf.o");
    let clang = std::env::var("FERROTURN_CLANG").unwrap_or_else(|_| "clang".into());
    // Debian keeps <asm/types.h> under the multiarch directory of the build machine.
    let multiarch = Command::new("gcc")
        .arg("-print-multiarch")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("{}-linux-gnu", std::env::consts::ARCH));
    let status = Command::new(&clang)
        .args(["-target", "bpf", "-O2", "-g", "-Wall", "-Werror"])
        .arg(format!("-I/usr/include/{multiarch}"))
        .args(["-c", SOURCE, "-o"])
        .arg(&object)
        .status();
    match status {
        Ok(s) if s.success() => println!("cargo::rustc-cfg=ferroturn_fast_path"),
        Ok(s) => println!(
            "cargo::warning=kernel fast path compiled out: {clang} failed on {SOURCE} ({s}); install clang and libbpf-dev"
        ),
        Err(e) => println!(
            "cargo::warning=kernel fast path compiled out: cannot run {clang} ({e}); install clang and libbpf-dev"
        ),
    }
}
