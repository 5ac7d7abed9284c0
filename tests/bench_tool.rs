//! `ferroturn bench` against the real ferroturn binary on loopback: 5 audio participants for
//! about two seconds, no loss, and a JSON report with the expected fields.

const SECRET: &str = "bench-itest-secret";

mod bench_server;

use std::process::Command;

use bench_server::BenchServer;

#[test]
fn five_audio_participants_lose_nothing() {
    let dir = std::env::temp_dir().join(format!("ferroturn-bench-itest-{}", std::process::id()));
    // A relay range above the ephemeral ports (32768-60999) and the 20000-48800 the other
    // tests take their 16-port relay ranges from, so parallel tests never meet in it.
    let server = BenchServer::start(&dir, SECRET, (61000, 61999));
    let port = server.port;
    let bin = env!("CARGO_BIN_EXE_ferroturn");
    let json = dir.join("out.json");
    let svg = dir.join("out.svg");
    let out = Command::new(bin)
        .args(["bench", "--server", &format!("127.0.0.1:{port}")])
        .args([
            "--secret",
            SECRET,
            "--participants",
            "5",
            "--profile",
            "audio",
        ])
        .args(["--duration", "2", "--warmup", "0.5"])
        .arg("--server-pid")
        .arg(server.pid().to_string())
        .arg("--json")
        .arg(&json)
        .arg("--svg")
        .arg(&svg)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["mode"], "fixed");
    assert_eq!(v["profile"]["name"], "audio");
    let w = &v["windows"][0];
    assert_eq!(w["participants"], 5, "{stdout}");
    for leg in ["up", "down"] {
        let l = &w[leg];
        assert!(l["sent"].as_u64().unwrap() >= 400, "{leg}: {l}");
        assert_eq!(l["sent"], l["received"], "{leg} lost packets: {l}");
        assert_eq!(l["loss_pct"], 0.0);
        for f in ["p50_ms", "p99_ms", "p999_ms", "max_ms", "jitter_ms"] {
            assert!(l[f].as_f64().is_some(), "{leg}.{f} missing");
        }
    }
    // The derived rates must agree with the counts they come from: 5 audio participants send
    // 250 packets per second each way, every payload 160 bytes.
    let num = |v: &serde_json::Value| v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    let seconds = num(&w["seconds"]);
    assert!((1.9..2.6).contains(&seconds), "measured {seconds} s");
    let near = |got: f64, want: f64, what: &str| {
        assert!(
            (got - want).abs() <= 0.01 * want + 0.002,
            "{what}: {got}, the counts say {want}"
        );
    };
    assert_eq!(num(&w["target_pps_each_way"]), 250.0);
    let sent = num(&w["up"]["sent"]);
    near(
        num(&w["achieved_pps_each_way"]),
        sent / seconds,
        "achieved_pps_each_way",
    );
    assert!(
        (225.0..=275.0).contains(&num(&w["achieved_pps_each_way"])),
        "{w}"
    );
    let received = num(&w["up"]["received"]) + num(&w["down"]["received"]);
    near(num(&w["relayed_pps"]), received / seconds, "relayed_pps");
    near(
        num(&w["relayed_mbps"]),
        received * 160.0 * 8.0 / 1e6 / seconds,
        "relayed_mbps",
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let cpu = num(&w["generator_cpu_pct"]);
    assert!(cpu > 0.0 && cpu <= 100.0 * cores, "generator CPU {cpu}%");
    let up_p50 = num(&w["up"]["p50_ms"]);
    assert!(
        up_p50 > 0.0 && up_p50 <= num(&w["up"]["p99_ms"]),
        "{}",
        w["up"]
    );
    assert!(w["server"]["rss_kib"].as_u64().unwrap() > 0);
    assert!(w["server"]["cpu_us_per_packet"].as_f64().is_some());
    assert_eq!(v["setup_failures"].as_array().unwrap().len(), 0);
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(chart.trim_end().ends_with("</svg>"));
    assert!(
        chart.contains("(log scale)"),
        "latency axis is not logarithmic"
    );
    for marker in ["p50", "p99", "p99.9"] {
        assert!(
            chart.contains(&format!(">\n{marker}\n</text>")),
            "no {marker} marker"
        );
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn refuses_targets_off_loopback() {
    let out = Command::new(env!("CARGO_BIN_EXE_ferroturn"))
        .args(["bench", "--server", "192.0.2.1:3478", "--secret", "x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}

#[test]
fn a_ramp_cut_by_its_time_bound_prints_a_lower_bound() {
    let dir = std::env::temp_dir().join(format!("ferroturn-bench-ramp-{}", std::process::id()));
    let server = BenchServer::start(&dir, SECRET, (62000, 62999));
    let port = server.port;
    let json = dir.join("ramp.json");
    // Steps of 2 up to 100 with 3 s for the whole ramp: the time bound ends it long before a
    // loopback relay loses anything at 200 pps.
    let out = Command::new(env!("CARGO_BIN_EXE_ferroturn"))
        .args([
            "bench",
            "--mode",
            "ramp",
            "--server",
            &format!("127.0.0.1:{port}"),
        ])
        .args(["--secret", SECRET, "--profile", "audio"])
        .args(["--start", "2", "--step", "2", "--max-participants", "100"])
        .args([
            "--step-duration",
            "0.5",
            "--warmup",
            "0.2",
            "--time-limit",
            "3",
        ])
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("ramp stopped: time bound reached"),
        "{stdout}"
    );
    assert!(
        stdout.contains("participants (not reached: time bound reached)"),
        "{stdout}"
    );
    assert!(stdout.contains("capacity: ≥ "), "{stdout}");
    assert!(!stdout.contains("<= capacity"), "{stdout}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["capacity"]["reached"], false, "{}", v["capacity"]);
    assert!(v["capacity"]["participants"].as_u64().unwrap() >= 2);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
