//! `cargo xtask bench [--quick] [--only ROWS]`: the toolkit against what
//! users would pick instead, as ratios with the goal beside each.
//!
//! The measuring pieces live in the `runagent-bench` crate (servers, client
//! load, SSE parsers, synthetic specs, peak memory); this module builds them,
//! runs them as separate processes pinned to cores, alternates the two sides
//! of every comparison (A B A B …) so that machine noise hits both, and
//! reports the median and range of the per-pair ratios. Results go to
//! `target/bench/` as JSON so the numbers in BENCHMARKS.md can be traced.
//!
//! `--quick` runs every row at tiny sizes in the dev profile, to prove the
//! harness works end to end in CI; its numbers mean nothing.

mod scale_out;

use serde_json::{Value, json};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Instant;

/// What one run measures and how long.
struct Plan {
    quick: bool,
    /// Pairs of runs of the codegen comparison.
    codegen_pairs: usize,
    /// Spec sizes of the scaling row, as multiples of ours.
    factors: Vec<usize>,
    scaling_reps: usize,
    /// wrk's run length per side, seconds, and pairs.
    wrk_seconds: u64,
    wrk_pairs: usize,
    wrk_connections: usize,
    client_ms: u64,
    client_pairs: usize,
    client_concurrency: usize,
    sse_pairs: usize,
    sse_bytes: usize,
    build_pairs: usize,
    /// Row 7: how many SSE streams to hold open, pairs per count, and how
    /// long to measure once they are open.
    stream_counts: Vec<usize>,
    stream_pairs: usize,
    stream_hold_ms: u64,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Plan {
                quick,
                codegen_pairs: 1,
                factors: vec![1, 2, 4],
                scaling_reps: 1,
                wrk_seconds: 1,
                wrk_pairs: 1,
                wrk_connections: 8,
                client_ms: 300,
                client_pairs: 1,
                client_concurrency: 8,
                sse_pairs: 1,
                sse_bytes: 64 * 1024,
                build_pairs: 1,
                stream_counts: vec![20, 100],
                stream_pairs: 1,
                stream_hold_ms: 1500,
            }
        } else {
            Plan {
                quick,
                codegen_pairs: 5,
                factors: vec![1, 4, 16, 64],
                scaling_reps: 3,
                wrk_seconds: 10,
                wrk_pairs: 5,
                wrk_connections: 32,
                client_ms: 5000,
                client_pairs: 5,
                client_concurrency: 16,
                sse_pairs: 7,
                sse_bytes: 8 << 20,
                build_pairs: 3,
                stream_counts: vec![1000, 10_000],
                stream_pairs: 2,
                stream_hold_ms: 10_000,
            }
        }
    }
}

/// One line of the table, with everything behind it.
struct Row {
    id: &'static str,
    name: String,
    ours: String,
    baseline: String,
    /// Median, min and max of the per-pair ratios (or the single figure).
    ratio: Option<(f64, f64, f64)>,
    /// How the ratio is printed: `×` for ratios, nothing for exponents.
    unit: &'static str,
    goal: String,
    /// `None` when there is no goal or nothing could be measured.
    met: Option<bool>,
    note: String,
    details: Value,
}

impl Row {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id, "name": self.name, "ours": self.ours, "baseline": self.baseline,
            "ratio": self.ratio.map(|(m, lo, hi)| json!({"median": m, "min": lo, "max": hi})),
            "goal": self.goal, "met": self.met, "note": self.note, "details": self.details,
        })
    }
}

/// Where things are.
struct Env {
    root: PathBuf,
    /// The target directory cargo uses for the workspace.
    target: PathBuf,
    /// Scratch space for generated code and specs.
    work: PathBuf,
    bench: PathBuf,
    xtask: PathBuf,
    jar: Option<PathBuf>,
    /// Clock ticks per second of /proc/PID/stat's CPU times.
    clock_ticks: f64,
    /// Cores for the measured process and for the load, when there are two.
    cores: Option<(&'static str, &'static str)>,
}

impl Env {
    /// `program`, pinned to `core` with taskset when pinning is possible.
    fn pinned(&self, core: fn(&(&'static str, &'static str)) -> &'static str, program: &Path) -> Command {
        match &self.cores {
            Some(cores) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(core(cores)).arg(program);
                c
            }
            None => Command::new(program),
        }
    }

    fn java(&self, generator: &str, spec: &Path, out: &Path) -> Result<Command, String> {
        let jar = self.jar.as_ref().ok_or("openapi-generator is missing")?;
        let mut c = Command::new("java");
        c.arg("-jar").arg(jar).args(["generate", "-g", generator, "-i"]).arg(spec).arg("-o").arg(out);
        Ok(c)
    }
}

fn server_core(c: &(&'static str, &'static str)) -> &'static str {
    c.0
}

fn load_core(c: &(&'static str, &'static str)) -> &'static str {
    c.1
}

pub fn run(root: &Path, quick: bool, only: Option<Vec<u32>>) -> Result<(), String> {
    let plan = Plan::new(quick);
    let wanted = |row: u32| only.as_ref().is_none_or(|rows| rows.contains(&row));
    let started = Instant::now();

    // Everything missing is reported before anything slow happens.
    if wanted(3) && find_in_path("wrk").is_none() {
        return Err("wrk is not installed; install it with `apt-get install -y wrk` (Debian package `wrk`)".into());
    }
    let jar = find_jar(root);
    if (wanted(1) || wanted(6) || wanted(10)) && (jar.is_none() || find_in_path("java").is_none()) {
        return Err("openapi-generator is not installed (expected .tools/venv/lib/python*/site-packages/\
             openapi_generator_cli/openapi-generator.jar and `java` on PATH); run `.ci/install-tools`"
            .into());
    }
    scale_out::check_tools(wanted(8), wanted(9))?;
    if (wanted(8) || wanted(9)) && find_in_path("wrk").is_none() {
        return Err("wrk is not installed; install it with `apt-get install -y wrk` (Debian package `wrk`)".into());
    }
    let cores = if std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2 && find_in_path("taskset").is_some()
    {
        Some(("0", "1"))
    } else {
        None
    };

    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let profile = if quick { "debug" } else { "release" };
    eprintln!("bench: building runagent-bench and xtask ({profile})");
    let mut packages = vec!["runagent-bench", "xtask"];
    if wanted(9) {
        packages.push("runagent-local");
    }
    for package in packages {
        let mut c = cargo(root);
        c.args(["build", "--quiet", "-p", package]);
        if !quick {
            c.arg("--release");
        }
        run_ok(&mut c, "cargo build")?;
    }
    let results = root.join("target/bench");
    let work = root.join("target/bench-work");
    std::fs::create_dir_all(&results).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let env = Env {
        root: root.to_path_buf(),
        bench: target.join(profile).join("runagent-bench"),
        xtask: target.join(profile).join("xtask"),
        target,
        work,
        jar,
        cores,
        clock_ticks: Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0),
    };

    let mut rows = Vec::new();
    if wanted(1) {
        rows.push(codegen(&env, &plan)?);
    }
    if wanted(2) {
        rows.push(scaling(&env, &plan)?);
    }
    if wanted(3) || wanted(4) {
        let servers = Servers::start(&env)?;
        if wanted(3) {
            rows.extend(server(&env, &plan, &servers)?);
        }
        if wanted(4) {
            rows.push(client(&env, &plan, &servers)?);
        }
    }
    if wanted(5) {
        rows.extend(sse(&env, &plan)?);
    }
    if wanted(6) {
        rows.extend(build_cost(&env, &plan)?);
    }
    if wanted(7) {
        rows.extend(open_streams(&env, &plan)?);
    }
    if wanted(8) {
        rows.extend(scale_out::redis_router(&env, &plan)?);
    }
    if wanted(9) {
        let binary = env.target.join(profile).join("runagent-local");
        rows.extend(scale_out::local(&env, &plan, &binary)?);
    }
    if wanted(10) {
        rows.push(corpus_codegen(&env, &plan)?);
    }

    let machine = machine();
    let table = table(&rows);
    let elapsed = started.elapsed().as_secs_f64();
    println!("\n{table}");
    for row in &rows {
        if !row.note.is_empty() {
            println!("{}: {}", row.id, row.note);
        }
    }
    println!(
        "\n{} run on {} ({} cores, {}), {}; {:.0} s.",
        if quick { "Quick (numbers not judged)" } else { "Full" },
        machine["cpu"].as_str().unwrap_or("?"),
        machine["nproc"],
        machine["memory"].as_str().unwrap_or("?"),
        if env.cores.is_some() { "measured process on core 0, load on core 1 (taskset)" } else { "no core pinning" },
        elapsed
    );
    let report = json!({
        "date": now(),
        "quick": quick,
        "machine": machine,
        "plan": {
            "codegen_pairs": plan.codegen_pairs, "factors": plan.factors, "scaling_reps": plan.scaling_reps,
            "wrk_seconds": plan.wrk_seconds, "wrk_pairs": plan.wrk_pairs, "wrk_connections": plan.wrk_connections,
            "client_ms": plan.client_ms, "client_pairs": plan.client_pairs, "client_concurrency": plan.client_concurrency,
            "sse_pairs": plan.sse_pairs, "sse_bytes": plan.sse_bytes, "build_pairs": plan.build_pairs,
            "stream_counts": plan.stream_counts, "stream_pairs": plan.stream_pairs,
            "stream_hold_ms": plan.stream_hold_ms,
            "pinning": env.cores.map(|(a, b)| json!({"measured": a, "load": b})),
        },
        "elapsed_s": elapsed,
        "rows": rows.iter().map(Row::to_json).collect::<Vec<_>>(),
        "table": table,
    });
    let name = if quick { "latest-quick.json" } else { "latest.json" };
    let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(results.join(name), &text).map_err(|e| e.to_string())?;
    if !quick {
        let stamp = now().replace(':', "");
        std::fs::write(results.join(format!("full-{stamp}.json")), &text).map_err(|e| e.to_string())?;
    }
    eprintln!("bench: results in {}", results.join(name).display());
    Ok(())
}

// ---------------------------------------------------------------- rows

/// Row 1: full regeneration against openapi-generator's rust + rust-axum.
fn codegen(env: &Env, plan: &Plan) -> Result<Row, String> {
    eprintln!("bench: 1 codegen ({} pairs)", plan.codegen_pairs);
    let spec = env.root.join("spec/openapi.yaml");
    let dir = env.work.join("codegen");
    let (mut ours, mut rust, mut axum, mut ratios) = (vec![], vec![], vec![], vec![]);
    for _ in 0..plan.codegen_pairs {
        fresh(&dir)?;
        let mut c = Command::new(&env.xtask);
        c.arg("codegen").arg("--spec").arg(&spec).arg("--out").arg(dir.join("ours"));
        let a = timed(&mut c, "xtask codegen")?;
        let r = timed(&mut env.java("rust", &spec, &dir.join("rust"))?, "openapi-generator rust")?;
        let x = timed(&mut env.java("rust-axum", &spec, &dir.join("axum"))?, "openapi-generator rust-axum")?;
        ours.push(a);
        rust.push(r);
        axum.push(x);
        ratios.push((r + x) / a);
    }
    // The generator alone, in process, shows how much of our time is the
    // generator and how much is rustfmt and the file system.
    let mut c = env.pinned(server_core, &env.bench);
    c.arg("gen-time").arg("--spec").arg(&spec).arg("--reps").arg(plan.codegen_pairs.max(3).to_string());
    let g = json_line(&mut c, "gen-time")?;
    let gen_times: Vec<f64> = g["times_s"].as_array().into_iter().flatten().filter_map(Value::as_f64).collect();
    let ratio = stats(&ratios);
    let both: Vec<f64> = rust.iter().zip(&axum).map(|(r, x)| r + x).collect();
    Ok(Row {
        id: "1",
        name: "codegen: full regeneration (client + server + docs)".into(),
        ours: format!("{} s", spread(&ours, 2)),
        baseline: format!(
            "{} s (rust {} + rust-axum {})",
            spread(&both, 1),
            fmt(median(&rust), 1),
            fmt(median(&axum), 1)
        ),
        ratio: Some(ratio),
        unit: "×",
        goal: "≥ 20×".into(),
        met: Some(ratio.0 >= 20.0),
        note: format!(
            "times are process start to exit into an empty folder: ours is the built xtask binary \
             (`xtask codegen --out DIR`: parse, generate, one rustfmt run over the spec-derived files, \
             write), theirs is `java -jar openapi-generator.jar generate -g rust` plus the same with `-g rust-axum` \
             (JVM start included, no formatter run, Python wrapper not timed); of our time the generator itself \
             (in process) takes {} s, the rest is rustfmt and writing",
            fmt(median(&gen_times), 3)
        ),
        details: json!({ "ours_s": ours, "rust_s": rust, "rust_axum_s": axum, "ratios": ratios, "generate_only_s": gen_times }),
    })
}

/// Row 10: the largest file of the public corpus, OpenAI's 1.4 MB spec: our
/// time and peak memory to generate it against openapi-generator's `rust`
/// client, which needs `--skip-validate-spec` to take this file at all.
fn corpus_codegen(env: &Env, plan: &Plan) -> Result<Row, String> {
    let pairs = plan.codegen_pairs.min(3);
    eprintln!("bench: 10 corpus codegen ({pairs} pairs)");
    let spec = env.root.join("tests/corpus/openai-3.0-2025-04.yaml");
    let dir = env.work.join("corpus-codegen");
    let (mut ours, mut ours_rss, mut theirs, mut theirs_rss, mut ratios) = (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..pairs {
        fresh(&dir)?;
        let mut c = env.pinned(server_core, &env.bench);
        c.arg("rusage")
            .arg("--")
            .arg(&env.xtask)
            .arg("codegen")
            .arg("--spec")
            .arg(&spec)
            .arg("--out")
            .arg(dir.join("ours"));
        let a = json_line(&mut c, "rusage xtask codegen (openai)")?;
        let jar = env.jar.as_ref().ok_or("openapi-generator is missing")?;
        let mut c = env.pinned(server_core, &env.bench);
        c.arg("rusage").arg("--").arg("java").arg("-jar").arg(jar);
        c.args(["generate", "-g", "rust", "--skip-validate-spec", "-i"]).arg(&spec).arg("-o").arg(dir.join("rust"));
        let b = json_line(&mut c, "rusage openapi-generator rust (openai)")?;
        let wall = |v: &Value| v["wall_s"].as_f64().unwrap_or(f64::NAN);
        let rss = |v: &Value| v["max_rss_kib"].as_f64().unwrap_or(f64::NAN) / 1024.0;
        ours.push(wall(&a));
        ours_rss.push(rss(&a));
        theirs.push(wall(&b));
        theirs_rss.push(rss(&b));
        ratios.push(wall(&b) / wall(&a));
    }
    let ratio = stats(&ratios);
    Ok(Row {
        id: "10",
        name: "codegen: the largest corpus file (openai-3.0-2025-04.yaml, 1.4 MB)".into(),
        ours: format!("{} s, peak {} MiB", spread(&ours, 2), fmt(median(&ours_rss), 0)),
        baseline: format!("{} s, peak {} MiB (rust)", spread(&theirs, 1), fmt(median(&theirs_rss), 0)),
        ratio: Some(ratio),
        unit: "×",
        goal: "none (report)".into(),
        met: None,
        note: "client + server + docs (rustfmt included) against openapi-generator's `rust` client alone, which \
               refuses this file unless given `--skip-validate-spec`; times are process start to exit, peak memory \
               is the largest resident set of the process or a child it waited for"
            .into(),
        details: json!({
            "ours_s": ours, "ours_max_rss_mib": ours_rss, "rust_s": theirs, "rust_max_rss_mib": theirs_rss,
            "ratios": ratios,
        }),
    })
}

/// Row 2: time and peak memory of regeneration as the spec grows.
fn scaling(env: &Env, plan: &Plan) -> Result<Row, String> {
    eprintln!("bench: 2 scaling (factors {:?})", plan.factors);
    let spec = env.root.join("spec/openapi.yaml");
    let text = std::fs::read_to_string(&spec).map_err(|e| e.to_string())?;
    let (ops, schemas) = count_spec(&text);
    let dir = env.work.join("scaling");
    fresh(&dir)?;
    let mut points = Vec::new();
    for &factor in &plan.factors {
        let scaled = dir.join(format!("spec-x{factor}.yaml"));
        let mut c = Command::new(&env.bench);
        c.arg("scale-spec").arg("--spec").arg(&spec).arg("--factor").arg(factor.to_string()).arg("--out").arg(&scaled);
        run_ok(&mut c, "scale-spec")?;
        let (mut walls, mut rss) = (vec![], vec![]);
        for _ in 0..plan.scaling_reps {
            let out = dir.join(format!("out-x{factor}"));
            let _ = std::fs::remove_dir_all(&out);
            let mut c = env.pinned(server_core, &env.bench);
            c.arg("rusage").arg("--").arg(&env.xtask).arg("codegen").arg("--spec").arg(&scaled).arg("--out").arg(&out);
            let v = json_line(&mut c, "rusage xtask codegen")?;
            walls.push(v["wall_s"].as_f64().unwrap_or(f64::NAN));
            rss.push(v["max_rss_kib"].as_f64().unwrap_or(f64::NAN) / 1024.0);
        }
        let mut c = env.pinned(server_core, &env.bench);
        c.arg("gen-time").arg("--spec").arg(&scaled).arg("--reps").arg(plan.scaling_reps.to_string());
        let g = json_line(&mut c, "gen-time")?;
        let gen_times: Vec<f64> = g["times_s"].as_array().into_iter().flatten().filter_map(Value::as_f64).collect();
        points.push(json!({
            "factor": factor, "operations": ops * factor, "schemas": schemas * factor,
            "wall_s": walls, "median_wall_s": median(&walls), "max_rss_mib": rss, "median_max_rss_mib": median(&rss),
            "generate_only_s": gen_times, "median_generate_only_s": median(&gen_times),
            "generated_lines": g["lines"],
            "generate_only_max_rss_mib": g["max_rss_kib"].as_f64().unwrap_or(f64::NAN) / 1024.0,
        }));
    }
    let xs: Vec<f64> = plan.factors.iter().map(|&f| f as f64).collect();
    let col = |key: &str| points.iter().map(|p| p[key].as_f64().unwrap_or(f64::NAN)).collect::<Vec<_>>();
    let (wall, mem, generate) = (col("median_wall_s"), col("median_max_rss_mib"), col("median_generate_only_s"));
    let generate_mem = col("generate_only_max_rss_mib");
    let k = slope(&xs, &wall);
    // The slope between the two largest sizes, where fixed costs (process
    // start, the runtime files) no longer flatten the curve.
    let n = xs.len();
    let marginal = if n >= 2 { slope(&xs[n - 2..], &wall[n - 2..]) } else { f64::NAN };
    let per_factor = |values: &[f64], digits: usize, unit: &str| {
        plan.factors.iter().zip(values).map(|(f, v)| format!("{f}×: {} {unit}", fmt(*v, digits))).collect::<Vec<_>>()
    };
    Ok(Row {
        id: "2",
        name: format!(
            "scaling: {ops}→{} operations, {schemas}→{} schemas",
            ops * xs.last().copied().unwrap_or(1.0) as usize,
            schemas * xs.last().copied().unwrap_or(1.0) as usize
        ),
        ours: format!("{}; peak {}", per_factor(&wall, 2, "s").join(", "), per_factor(&mem, 0, "MiB").join(", ")),
        baseline: "—".into(),
        ratio: Some((k, k, k)),
        unit: "",
        goal: "exponent ≤ 1.1".into(),
        met: Some(k <= 1.1),
        note: format!(
            "growth exponent = least-squares slope of log(time) on log(size), of the whole `xtask codegen --out DIR` \
             (rustfmt included), {} between the two largest sizes; generator alone (in process, no rustfmt): {}, exponent {}, peak {}; peak memory exponent {} (the peak is the larger of \
             the generator and the biggest rustfmt process)",
            fmt(marginal, 2),
            per_factor(&generate, 3, "s").join(", "),
            fmt(slope(&xs, &generate), 2),
            per_factor(&generate_mem, 0, "MiB").join(", "),
            fmt(slope(&xs, &mem), 2)
        ),
        details: json!({ "points": points, "exponent_wall": k, "exponent_wall_largest_two": marginal, "exponent_generate_only": slope(&xs, &generate), "exponent_memory": slope(&xs, &mem) }),
    })
}

/// The servers of rows 3 and 4, pinned to the measured core.
struct Servers {
    generated: Server,
    minimal: Server,
    /// The stack a user would assemble instead (`runagent-bench serve --kind peer`).
    peer: Server,
}

struct Server {
    child: Child,
    /// Kept open: the server exits when it closes.
    _stdin: ChildStdin,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `runagent-bench serve --kind KIND` on the measured core.
fn start_server(env: &Env, kind: &str) -> Result<Server, String> {
    let mut c = env.pinned(server_core, &env.bench);
    c.args(["serve", "--kind", kind, "--threads", "1"]).stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = c.spawn().map_err(|e| format!("cannot start the {kind} server: {e}"))?;
    let stdin = child.stdin.take().expect("piped");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line).map_err(|e| e.to_string())?;
    let url = line.trim().strip_prefix("listening ").map(str::to_owned);
    let server = Server { child, _stdin: stdin, url: url.unwrap_or_default() };
    if server.url.is_empty() {
        return Err(format!("the {kind} server did not start"));
    }
    Ok(server)
}

impl Servers {
    fn start(env: &Env) -> Result<Self, String> {
        let start = |kind: &str| start_server(env, kind);
        Ok(Servers { generated: start("generated")?, minimal: start("minimal")?, peer: start("peer")? })
    }
}

const INVOKE_PATH: &str = "/v1/agents/agt_bench1/invoke";

/// One wrk run: requests/s, p50 and p99 latency (µs), and the server's CPU
/// time per request (µs), which tells whether the server's core was the limit.
type WrkRun = (f64, f64, f64, f64);

/// User plus system CPU time of a process so far, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the parenthesised command name; utime and stime are
    // fields 14 and 15 of the whole line.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?)
}

/// Runs wrk once against `server`.
fn wrk(env: &Env, script: &Path, server: &Server, seconds: u64, connections: usize) -> Result<WrkRun, String> {
    let url = &server.url;
    let pid = server.child.id();
    let before = cpu_ticks(pid);
    let mut c = env.pinned(load_core, Path::new("wrk"));
    c.args(["-t1", &format!("-c{connections}"), &format!("-d{seconds}s"), "-s"])
        .arg(script)
        .arg(format!("{url}{INVOKE_PATH}"));
    let out = output(&mut c, "wrk")?;
    let line =
        out.lines().find_map(|l| l.strip_prefix("BENCH ")).ok_or_else(|| format!("wrk printed no result:\n{out}"))?;
    let v: Value = serde_json::from_str(line).map_err(|e| format!("{e}: {line}"))?;
    let bad = v["non_2xx"].as_u64().unwrap_or(0) + v["socket_errors"].as_u64().unwrap_or(0);
    if bad > 0 || v["requests"].as_u64().unwrap_or(0) == 0 {
        return Err(format!("wrk against {url} saw errors (non-2xx or socket errors): {line}"));
    }
    let requests = v["requests"].as_f64().unwrap_or(0.0);
    let rps = requests / (v["duration_us"].as_f64().unwrap_or(1.0) / 1e6);
    let cpu = match (before, cpu_ticks(pid)) {
        (Some(a), Some(b)) => (b - a) / env.clock_ticks * 1e6 / requests,
        _ => f64::NAN,
    };
    Ok((rps, v["p50_us"].as_f64().unwrap_or(f64::NAN), v["p99_us"].as_f64().unwrap_or(f64::NAN), cpu))
}

/// Row 3: the generated router against a minimal axum handler, under wrk.
fn server(env: &Env, plan: &Plan, servers: &Servers) -> Result<Vec<Row>, String> {
    eprintln!("bench: 3 server ({} pairs of {} s)", plan.wrk_pairs, plan.wrk_seconds);
    let script = env.work.join("invoke.lua");
    std::fs::write(&script, WRK_SCRIPT).map_err(|e| e.to_string())?;
    let warm = if plan.quick { 1 } else { 2 };
    wrk(env, &script, &servers.generated, warm, plan.wrk_connections)?;
    wrk(env, &script, &servers.minimal, warm, plan.wrk_connections)?;
    wrk(env, &script, &servers.peer, warm, plan.wrk_connections)?;
    let (mut a, mut b, mut c) = (vec![], vec![], vec![]);
    let (mut throughput, mut p99, mut peer_throughput, mut peer_p99) = (vec![], vec![], vec![], vec![]);
    // Rounds of the three servers in turn (ours, minimal, peer), so that
    // machine noise hits all three; each ratio pairs runs of one round.
    for _ in 0..plan.wrk_pairs {
        let x = wrk(env, &script, &servers.generated, plan.wrk_seconds, plan.wrk_connections)?;
        let y = wrk(env, &script, &servers.minimal, plan.wrk_seconds, plan.wrk_connections)?;
        let z = wrk(env, &script, &servers.peer, plan.wrk_seconds, plan.wrk_connections)?;
        throughput.push(x.0 / y.0);
        p99.push(x.2 / y.2);
        peer_throughput.push(x.0 / z.0);
        peer_p99.push(x.2 / z.2);
        a.push(x);
        b.push(y);
        c.push(z);
    }
    let pick = |v: &[WrkRun], i: usize| v.iter().map(|t| [t.0, t.1, t.2, t.3][i]).collect::<Vec<_>>();
    let describe = |v: &[WrkRun]| {
        format!(
            "{} req/s, p50 {} µs, p99 {} µs, {} µs CPU/req",
            fmt(median(&pick(v, 0)), 0),
            fmt(median(&pick(v, 1)), 0),
            fmt(median(&pick(v, 2)), 0),
            fmt(median(&pick(v, 3)), 1)
        )
    };
    let runs = |v: &[WrkRun]| {
        v.iter()
            .map(|t| json!({"rps": t.0, "p50_us": t.1, "p99_us": t.2, "server_cpu_us_per_request": t.3}))
            .collect::<Vec<_>>()
    };
    let details = json!({
        "generated": runs(&a),
        "minimal": runs(&b),
        "peer": runs(&c),
        "throughput_ratios": throughput, "p99_ratios": p99,
        "peer_throughput_ratios": peer_throughput, "peer_p99_ratios": peer_p99,
        "wrk": format!("wrk -t1 -c{} -d{}s -s invoke.lua", plan.wrk_connections, plan.wrk_seconds),
    });
    let t = stats(&throughput);
    let l = stats(&p99);
    let pt = stats(&peer_throughput);
    let pl = stats(&peer_p99);
    let setup = format!(
        "wrk -t1 -c{} -d{}s POST {INVOKE_PATH} ({} bytes of JSON); each server one process with a 1-worker tokio \
         runtime{}; the minimal server has no auth, validation or rate limit",
        plan.wrk_connections,
        plan.wrk_seconds,
        crate_invoke_body().len(),
        if env.cores.is_some() { ", pinned to core 0, wrk to core 1" } else { "" }
    );
    Ok(vec![
        Row {
            id: "3a",
            name: "server: invoke throughput (router vs minimal axum)".into(),
            ours: describe(&a),
            baseline: describe(&b),
            ratio: Some(t),
            unit: "×",
            goal: "≥ 0.85× (range ≥ 0.75×)".into(),
            met: Some(t.0 >= 0.85 && t.1 >= 0.75),
            note: setup,
            details,
        },
        Row {
            id: "3b",
            name: "server: invoke p99 latency (lower is better)".into(),
            ours: format!("p99 {} µs", fmt(median(&pick(&a, 2)), 0)),
            baseline: format!("p99 {} µs", fmt(median(&pick(&b, 2)), 0)),
            ratio: Some(l),
            unit: "×",
            goal: "≤ 1.25×".into(),
            met: Some(l.0 <= 1.25),
            note: String::new(),
            details: Value::Null,
        },
        Row {
            id: "3c",
            name: "server: invoke throughput (router vs peer stack: tower-http, auth, tower_governor, validator)"
                .into(),
            ours: describe(&a),
            baseline: describe(&c),
            ratio: Some(pt),
            unit: "×",
            goal: "≥ 1.0×".into(),
            met: Some(pt.0 >= 1.0),
            note: "the peer: axum with tower-http's SetRequestId/PropagateRequestId and RequestBodyLimit layers, a \
                   bearer-key middleware (HashMap lookup), tower_governor keyed by the bearer key (with its \
                   headers) and validator's derive on the same request type and path"
                .into(),
            details: Value::Null,
        },
        Row {
            id: "3d",
            name: "server: invoke p99 latency (router vs peer stack; lower is better)".into(),
            ours: format!("p99 {} µs", fmt(median(&pick(&a, 2)), 0)),
            baseline: format!("p99 {} µs", fmt(median(&pick(&c, 2)), 0)),
            ratio: Some(pl),
            unit: "×",
            goal: "none (report)".into(),
            met: None,
            note: String::new(),
            details: Value::Null,
        },
    ])
}

/// Row 4: runagent-client against raw reqwest, on the minimal server.
fn client(env: &Env, plan: &Plan, servers: &Servers) -> Result<Row, String> {
    eprintln!("bench: 4 client ({} pairs of {} ms)", plan.client_pairs, plan.client_ms);
    let mut c = env.pinned(load_core, &env.bench);
    c.arg("client").arg("--url").arg(&servers.minimal.url).args([
        "--concurrency",
        &plan.client_concurrency.to_string(),
        "--duration-ms",
        &plan.client_ms.to_string(),
        "--pairs",
        &plan.client_pairs.to_string(),
        "--threads",
        "1",
    ]);
    let v = json_line(&mut c, "bench client")?;
    let list = |k: &str| v[k].as_array().into_iter().flatten().filter_map(Value::as_f64).collect::<Vec<_>>();
    let (a, b) = (list("ours_calls_per_s"), list("raw_calls_per_s"));
    let (a_cpu, b_cpu) = (list("ours_cpu_us_per_call"), list("raw_cpu_us_per_call"));
    let ratios: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x / y).collect();
    let r = stats(&ratios);
    Ok(Row {
        id: "4",
        name: "client: invoke calls/s (runagent-client vs raw reqwest)".into(),
        ours: format!("{} calls/s, {} µs CPU/call", spread(&a, 0), fmt(median(&a_cpu), 0)),
        baseline: format!("{} calls/s, {} µs CPU/call", spread(&b, 0), fmt(median(&b_cpu), 0)),
        ratio: Some(r),
        unit: "×",
        goal: "≥ 0.95×".into(),
        met: Some(r.0 >= 0.95),
        note: format!(
            "{} concurrent callers for {} ms per side, one process with a 1-worker tokio runtime{}, against the \
             minimal axum server; both send Authorization, Accept and a JSON body and decode typed JSON; \
             runagent-client also validates the request, adds an Idempotency-Key and reads the response metadata",
            plan.client_concurrency,
            plan.client_ms,
            if env.cores.is_some() { " on core 1, server on core 0" } else { "" }
        ),
        details: json!({
            "ours_calls_per_s": a, "raw_calls_per_s": b, "ratios": ratios,
            "ours_cpu_us_per_call": a_cpu, "raw_cpu_us_per_call": b_cpu,
        }),
    })
}

/// Row 7: N open SSE streams, a chunk a second each, on the generated
/// router (through the in-memory stream log) and on a minimal axum SSE
/// handler; a fresh server process per run, the two alternated.
fn open_streams(env: &Env, plan: &Plan) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for (i, &n) in plan.stream_counts.iter().enumerate() {
        eprintln!("bench: 7 open streams ({n} streams, {} pairs of {} ms)", plan.stream_pairs, plan.stream_hold_ms);
        let (mut ours, mut theirs) = (vec![], vec![]);
        for _ in 0..plan.stream_pairs {
            for (kind, runs) in [("generated", &mut ours), ("minimal-sse", &mut theirs)] {
                let server = start_server(env, kind)?;
                let mut c = env.pinned(load_core, &env.bench);
                c.args(["streams", "--url", &server.url, "--pid", &server.child.id().to_string()]).args([
                    "--streams",
                    &n.to_string(),
                    "--hold-ms",
                    &plan.stream_hold_ms.to_string(),
                ]);
                runs.push(json_line(&mut c, "bench streams")?);
                drop(server);
            }
        }
        let list = |runs: &[Value], k: &str| runs.iter().filter_map(|r| r[k].as_f64()).collect::<Vec<_>>();
        let memory: Vec<f64> =
            list(&ours, "kib_per_stream").iter().zip(list(&theirs, "kib_per_stream")).map(|(a, b)| a / b).collect();
        let cpu: Vec<f64> =
            list(&ours, "cpu_us_per_event").iter().zip(list(&theirs, "cpu_us_per_event")).map(|(a, b)| a / b).collect();
        let failures = |runs: &[Value]| {
            runs.iter()
                .map(|r| {
                    r["errors"].as_u64().unwrap_or(1) + (n as u64).saturating_sub(r["opened"].as_u64().unwrap_or(0))
                })
                .sum::<u64>()
        };
        let (bad_ours, bad_theirs) = (failures(&ours), failures(&theirs));
        let m = stats(&memory);
        let cpu_stats = stats(&cpu);
        let describe = |runs: &[Value], bad: u64| {
            format!(
                "{} KiB/stream, {} µs CPU/event, {} events/s, {} failed",
                fmt(median(&list(runs, "kib_per_stream")), 1),
                fmt(median(&list(runs, "cpu_us_per_event")), 1),
                fmt(median(&list(runs, "events_per_s")), 0),
                bad
            )
        };
        let ids = [["7a", "7b"], ["7c", "7d"]];
        let id = ids.get(i).copied().unwrap_or(["7", "7"]);
        rows.push(Row {
            id: id[0],
            name: format!("open SSE streams: {n}, memory per stream (router + log vs minimal axum SSE)"),
            ours: describe(&ours, bad_ours),
            baseline: describe(&theirs, bad_theirs),
            ratio: Some(m),
            unit: "×",
            goal: "≤ 1.5×, none failed".into(),
            met: Some(m.0 <= 1.5 && bad_ours == 0),
            note: format!(
                "{n} streams opened over raw TCP by one client process (1-worker runtime{}), each getting a chunk a \
                 second; resident memory (VmRSS) once all are open and {} ms later, minus the idle server's, per \
                 stream; the server's CPU time over those {} ms per event delivered. A fresh server per run.",
                if env.cores.is_some() { ", core 1; the server on core 0" } else { "" },
                plan.stream_hold_ms,
                plan.stream_hold_ms
            ),
            details: json!({"generated": ours, "minimal_sse": theirs, "memory_ratios": memory, "cpu_ratios": cpu}),
        });
        rows.push(Row {
            id: id[1],
            name: format!("open SSE streams: {n}, CPU per delivered event (lower is better)"),
            ours: format!("{} µs/event", fmt(median(&list(&ours, "cpu_us_per_event")), 1)),
            baseline: format!("{} µs/event", fmt(median(&list(&theirs, "cpu_us_per_event")), 1)),
            ratio: Some(cpu_stats),
            unit: "×",
            goal: "none (report)".into(),
            met: None,
            note: String::new(),
            details: Value::Null,
        });
    }
    Ok(rows)
}

/// Row 5: SseParser against eventsource-stream, one sub-row per case.
fn sse(env: &Env, plan: &Plan) -> Result<Vec<Row>, String> {
    eprintln!("bench: 5 SSE ({} pairs, {} bytes per case)", plan.sse_pairs, plan.sse_bytes);
    let mut c = env.pinned(server_core, &env.bench);
    c.args(["sse", "--pairs", &plan.sse_pairs.to_string(), "--bytes", &plan.sse_bytes.to_string()]);
    let v = json_line(&mut c, "bench sse")?;
    let mut rows = Vec::new();
    for (i, case) in v["cases"].as_array().into_iter().flatten().enumerate() {
        let list = |k: &str| case[k].as_array().into_iter().flatten().filter_map(Value::as_f64).collect::<Vec<_>>();
        let (a, b) = (list("ours_events_per_s"), list("theirs_events_per_s"));
        let ratios: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x / y).collect();
        let r = stats(&ratios);
        rows.push(Row {
            id: ["5a", "5b", "5c", "5d"].get(i).copied().unwrap_or("5"),
            name: format!("SSE parse: {}", case["case"].as_str().unwrap_or("?")),
            ours: format!("{} events/s", spread_si(&a)),
            baseline: format!("{} events/s", spread_si(&b)),
            ratio: Some(r),
            unit: "×",
            goal: "≥ 1×".into(),
            met: Some(r.0 >= 1.0),
            note: if i == 0 {
                "runagent-client SseParser vs eventsource-stream 0.2.3 on the same bytes and reads, in process; \
                 both yield the same events (checked before timing)"
                    .into()
            } else {
                String::new()
            },
            details: json!({ "case": case, "ratios": ratios }),
        });
    }
    Ok(rows)
}

/// Row 6: how long the client crate takes to build, and how big it is,
/// against openapi-generator's rust client for the same spec.
fn build_cost(env: &Env, plan: &Plan) -> Result<Vec<Row>, String> {
    // The quick run checks instead of building and reuses the workspace's
    // target directory, whose dependencies CI has already compiled; the full
    // run builds in a dedicated directory, both sides' dependencies prebuilt.
    let (verb, target) =
        if plan.quick { ("check", env.target.clone()) } else { ("build", env.root.join("target/bench-build")) };
    eprintln!("bench: 6 build cost (cargo {verb}, {} pairs, target {})", plan.build_pairs, target.display());
    let theirs_dir = env.work.join("openapi-generator-rust");
    fresh(&theirs_dir)?;
    run_ok(&mut env.java("rust", &env.root.join("spec/openapi.yaml"), &theirs_dir)?, "openapi-generator rust")?;
    // Their crate is made a workspace of its own so that ours does not claim
    // it, and starts from our lock file so the dependencies both share
    // resolve to the same versions and are built once.
    let manifest = theirs_dir.join("Cargo.toml");
    let mut text = std::fs::read_to_string(&manifest).map_err(|e| e.to_string())?;
    text.push_str("\n[workspace]\n");
    std::fs::write(&manifest, text).map_err(|e| e.to_string())?;
    std::fs::copy(env.root.join("Cargo.lock"), theirs_dir.join("Cargo.lock")).map_err(|e| e.to_string())?;

    let ours = |c: &mut Command| {
        c.current_dir(&env.root).env("CARGO_TARGET_DIR", &target);
    };
    let theirs = |c: &mut Command| {
        // Their default TLS backend is native-tls (OpenSSL); rustls is what
        // runagent-client uses, so both build the same TLS stack.
        c.current_dir(&theirs_dir).env("CARGO_TARGET_DIR", &target);
    };
    let mut ours_build = cargo(&env.root);
    ours_build.args([verb, "--quiet", "-p", "runagent-client"]);
    ours(&mut ours_build);
    let mut theirs_build = cargo(&theirs_dir);
    theirs_build.args([verb, "--quiet", "--no-default-features", "--features", "rustls"]);
    theirs(&mut theirs_build);
    let mut ours_clean = cargo(&env.root);
    ours_clean.args(["clean", "--quiet", "-p", "runagent-client"]);
    ours(&mut ours_clean);
    let mut theirs_clean = cargo(&theirs_dir);
    theirs_clean.args(["clean", "--quiet", "-p", "openapi"]);
    theirs(&mut theirs_clean);

    eprintln!("bench: 6 prebuilding both sides' dependencies");
    run_ok(&mut ours_build, "cargo build -p runagent-client")?;
    let theirs_compiles = run_ok(&mut theirs_build, "cargo build (openapi-generator's rust client)");
    let (mut a, mut b, mut ratios) = (vec![], vec![], vec![]);
    for _ in 0..plan.build_pairs {
        run_ok(&mut ours_clean, "cargo clean")?;
        let x = timed(&mut ours_build, "cargo build -p runagent-client")?;
        a.push(x);
        if theirs_compiles.is_ok() {
            run_ok(&mut theirs_clean, "cargo clean")?;
            let y = timed(&mut theirs_build, "cargo build (openapi-generator's rust client)")?;
            b.push(y);
            ratios.push(x / y);
        }
    }
    let ours_lines = count_lines(&env.root.join("generated/client/src"));
    let theirs_lines = count_lines(&theirs_dir.join("src"));
    let mut note = format!(
        "`cargo {verb}` (dev profile) of the crate alone after `cargo clean -p` of it, dependencies already built, \
         target {}; theirs is `openapi-generator generate -g rust`, built with `--no-default-features --features \
         rustls`. Lines are all lines of the crate's .rs files (non-blank in brackets); ours include the runtime \
         (retries, SSE, resume, pagination, polling, validation) that theirs does not have",
        target.display()
    );
    if let Err(e) = &theirs_compiles {
        note.push_str(&format!(
            "; THEIR CLIENT DOES NOT COMPILE: {}",
            e.lines().take(6).collect::<Vec<_>>().join(" / ")
        ));
    }
    let build_ratio = if ratios.is_empty() { None } else { Some(stats(&ratios)) };
    Ok(vec![
        Row {
            id: "6a",
            name: format!("build cost: `cargo {verb} -p runagent-client`, own crate only"),
            ours: format!("{} s", spread(&a, 1)),
            baseline: if b.is_empty() { "does not compile".into() } else { format!("{} s", spread(&b, 1)) },
            ratio: build_ratio,
            unit: "×",
            goal: "none (report)".into(),
            met: None,
            note,
            details: json!({ "ours_s": a, "theirs_s": b, "ratios": ratios, "theirs_error": theirs_compiles.err() }),
        },
        Row {
            id: "6b",
            name: "build cost: generated lines of Rust".into(),
            ours: format!("{} ({})", ours_lines.0, ours_lines.1),
            baseline: format!("{} ({})", theirs_lines.0, theirs_lines.1),
            ratio: Some({
                let r = ours_lines.0 as f64 / theirs_lines.0.max(1) as f64;
                (r, r, r)
            }),
            unit: "×",
            goal: "none (report)".into(),
            met: None,
            note: String::new(),
            details: json!({ "ours": {"lines": ours_lines.0, "non_blank": ours_lines.1}, "theirs": {"lines": theirs_lines.0, "non_blank": theirs_lines.1} }),
        },
    ])
}

// ---------------------------------------------------------------- helpers

/// The wrk script: POSTs the invocation and prints one `BENCH {json}` line
/// with the totals and latency percentiles (wrk reports microseconds).
const WRK_SCRIPT: &str = r#"-- Written by `cargo xtask bench`.
wrk.method = "POST"
wrk.body = [[{"query":"Summarise the support tickets of this week","parameters":{"temperature":0.7,"max_tokens":150},"session_id":"sess_42"}]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench-key"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,"non_2xx":%d,"socket_errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.status, e.connect + e.read + e.write + e.timeout))
end
"#;

fn crate_invoke_body() -> &'static str {
    WRK_SCRIPT.split("[[").nth(1).and_then(|s| s.split("]]").next()).unwrap_or("")
}

fn cargo(dir: &Path) -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(dir);
    c
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(program)).find(|p| p.is_file())
}

fn find_jar(root: &Path) -> Option<PathBuf> {
    let lib = root.join(".tools/venv/lib");
    std::fs::read_dir(&lib)
        .ok()?
        .flatten()
        .map(|e| e.path().join("site-packages/openapi_generator_cli/openapi-generator.jar"))
        .find(|p| p.is_file())
}

fn fresh(dir: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

/// Runs a command to completion; the error carries the end of its output.
fn output(c: &mut Command, what: &str) -> Result<String, String> {
    let out = c.stdin(Stdio::null()).output().map_err(|e| format!("cannot run {what}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().chain(stdout.lines()).collect();
        let tail = tail[tail.len().saturating_sub(30)..].join("\n");
        return Err(format!("{what} failed ({}):\n{tail}", out.status));
    }
    Ok(stdout)
}

fn run_ok(c: &mut Command, what: &str) -> Result<(), String> {
    output(c, what).map(drop)
}

/// Wall time of a successful run, in seconds.
fn timed(c: &mut Command, what: &str) -> Result<f64, String> {
    let start = Instant::now();
    output(c, what)?;
    Ok(start.elapsed().as_secs_f64())
}

/// The last JSON line a bench subcommand printed.
fn json_line(c: &mut Command, what: &str) -> Result<Value, String> {
    let out = output(c, what)?;
    let line = out.lines().rev().find(|l| l.starts_with('{')).ok_or_else(|| format!("{what} printed no result"))?;
    serde_json::from_str(line).map_err(|e| format!("{what}: {e}"))
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Median, min and max.
fn stats(values: &[f64]) -> (f64, f64, f64) {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (median(values), lo, hi)
}

/// The least-squares slope of log(y) on log(x).
fn slope(xs: &[f64], ys: &[f64]) -> f64 {
    let (lx, ly): (Vec<f64>, Vec<f64>) = xs.iter().zip(ys).map(|(x, y)| (x.ln(), y.ln())).unzip();
    let n = lx.len() as f64;
    let (mx, my) = (lx.iter().sum::<f64>() / n, ly.iter().sum::<f64>() / n);
    let cov: f64 = lx.iter().zip(&ly).map(|(x, y)| (x - mx) * (y - my)).sum();
    let var: f64 = lx.iter().map(|x| (x - mx).powi(2)).sum();
    cov / var
}

fn fmt(v: f64, digits: usize) -> String {
    format!("{v:.digits$}")
}

/// `median (min–max)`.
fn spread(values: &[f64], digits: usize) -> String {
    let (m, lo, hi) = stats(values);
    if values.len() < 2 {
        fmt(m, digits)
    } else {
        format!("{} ({}–{})", fmt(m, digits), fmt(lo, digits), fmt(hi, digits))
    }
}

/// Large rates in millions, with the range.
fn spread_si(values: &[f64]) -> String {
    let m: Vec<f64> = values.iter().map(|v| v / 1e6).collect();
    format!("{} M", spread(&m, 2))
}

/// (all lines, non-blank lines) of the .rs files under `dir`.
fn count_lines(dir: &Path) -> (usize, usize) {
    let mut totals = (0, 0);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                totals.0 += text.lines().count();
                totals.1 += text.lines().filter(|l| !l.trim().is_empty()).count();
            }
        }
    }
    totals
}

/// Operations and component schemas of a spec, counted from its text (the
/// xtask has no YAML parser of its own and needs no more than this).
fn count_spec(text: &str) -> (usize, usize) {
    // Operations sit at one depth under `paths:`; links name operations too,
    // but only under `components:` or deeper inside responses.
    let paths = text.split("\ncomponents:\n").next().unwrap_or("");
    let ops = paths.lines().filter(|l| l.starts_with("      operationId:")).count();
    let schemas = text
        .split("\n  schemas:\n")
        .nth(1)
        .map(|rest| {
            rest.lines()
                .take_while(|l| l.is_empty() || l.starts_with("   ") || l.starts_with('#'))
                .filter(|l| l.starts_with("    ") && !l.starts_with("     ") && l.trim_end().ends_with(':'))
                .count()
        })
        .unwrap_or(0);
    (ops, schemas)
}

/// The table, as Markdown so that it can go into BENCHMARKS.md as printed.
fn table(rows: &[Row]) -> String {
    let mut out = String::from("| # | benchmark | ours | baseline | ratio: median (range) | goal | met |\n");
    out.push_str("|---|---|---|---|---|---|---|\n");
    for r in rows {
        let ratio = match r.ratio {
            None => "—".to_owned(),
            Some((m, lo, hi)) if (hi - lo).abs() < 1e-12 => format!("{}{}", fmt(m, 2), r.unit),
            Some((m, lo, hi)) => format!("{}{u} ({}–{}{u})", fmt(m, 2), fmt(lo, 2), fmt(hi, 2), u = r.unit),
        };
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "NOT met",
            None => "—",
        };
        let _ =
            writeln!(out, "| {} | {} | {} | {} | {} | {} | {} |", r.id, r.name, r.ours, r.baseline, ratio, r.goal, met);
    }
    out
}

/// What the numbers were measured on.
fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|r| r.trim_start_matches([' ', '\t', ':']).to_owned()))
        .unwrap_or_else(|| "unknown CPU".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kib| format!("{:.1} GiB RAM", kib / 1024.0 / 1024.0))
        .unwrap_or_else(|| "unknown memory".into());
    let version = |program: &str, arg: &str| {
        Command::new(program)
            .arg(arg)
            .output()
            .ok()
            .map(|o| {
                let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
                text.lines().next().unwrap_or("").trim().to_owned()
            })
            .unwrap_or_default()
    };
    json!({
        "nproc": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "cpu": cpu,
        "memory": memory,
        "kernel": version("uname", "-r"),
        "rustc": version("rustc", "-V"),
        "java": version("java", "-version"),
        "wrk": version("wrk", "-v"),
        "load_average": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
    })
}

/// The current UTC time, as ISO 8601.
fn now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_power_law_is_its_exponent() {
        let xs = [1.0, 4.0, 16.0, 64.0];
        let ys: Vec<f64> = xs.iter().map(|x: &f64| 3.0 * x.powf(1.25)).collect();
        assert!((slope(&xs, &ys) - 1.25).abs() < 1e-9);
    }

    #[test]
    fn stats_are_median_min_max() {
        assert_eq!(stats(&[3.0, 1.0, 2.0, 10.0]), (2.5, 1.0, 10.0));
    }

    #[test]
    fn our_spec_is_counted() {
        let text = std::fs::read_to_string(crate::codegen::project_root().join("spec/openapi.yaml")).unwrap();
        let (ops, schemas) = count_spec(&text);
        assert_eq!(ops, 16);
        assert!(schemas > 30, "{schemas}");
    }
}
