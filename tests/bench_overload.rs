//! `ferroturn bench --mode overload` against the real binary: a tiny ramp finds a capacity,
//! then every level (25/50/75 % and 1.5x/2x/4x of it) is offered and reported.

const SECRET: &str = "bench-overload-itest-secret";

mod bench_server;

use std::process::Command;

use bench_server::BenchServer;

#[test]
fn overload_mode_offers_every_level_of_the_measured_capacity() {
    let dir = std::env::temp_dir().join(format!("ferroturn-overload-itest-{}", std::process::id()));
    let server = BenchServer::start(&dir, SECRET, (20000, 29999));
    let port = server.port;
    let bin = env!("CARGO_BIN_EXE_ferroturn");
    let json = dir.join("out.json");
    // A ramp of 2 then 4 light participants (always within the bounds), then six short levels.
    let out = Command::new(bin)
        .args(["bench", "--server", &format!("127.0.0.1:{port}")])
        .args(["--secret", SECRET, "--mode", "overload"])
        .args(["--profile", "custom", "--rate", "50", "--size", "100"])
        .args(["--start", "2", "--step", "2", "--max-participants", "4"])
        .args([
            "--step-duration",
            "0.5",
            "--duration",
            "0.5",
            "--warmup",
            "0.2",
        ])
        .args(["--max-p99-ms", "1000", "--time-limit", "60"])
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
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["mode"], "overload");
    let capacity = v["overload"]["capacity_pps_each_way"].as_f64().unwrap();
    assert!(capacity > 150.0, "4 × 50 pps: {capacity}");
    let levels = v["overload"]["levels"].as_array().unwrap();
    let factors: Vec<f64> = levels
        .iter()
        .map(|l| l["factor"].as_f64().unwrap())
        .collect();
    assert_eq!(factors, [0.25, 0.5, 0.75, 1.5, 2.0, 4.0]);
    for l in levels {
        let f = l["factor"].as_f64().unwrap();
        let offered = l["offered_pps"].as_f64().unwrap();
        assert!(
            (offered - f * capacity).abs() < 0.01 * capacity,
            "level {f}: offered {offered} of capacity {capacity}"
        );
        // Light enough for any server: everything offered comes back.
        let echoed = l["echoed_pps"].as_f64().unwrap();
        assert!(
            echoed > 0.8 * offered,
            "level {f}: echoed {echoed} of {offered}"
        );
        assert!(l["p99_ms"].as_f64().is_some());
    }
    assert!(stdout.contains("overload  400 %"), "{stdout}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
