//! The deployment files, checked without a Docker engine (none runs here): the compose file
//! parses as YAML and has every service with a healthcheck and a restart policy; every command
//! they and the Procfile run exists in the CLI; every path the Dockerfile copies exists; the
//! runtime stage is not root; every variable they set is documented in `.env.example`.

use std::path::{Path, PathBuf};

use clap::Parser;
use nanobanana::cli::Cli;
use yaml_rust2::{Yaml, YamlLoader};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `nanobanana <args>` parses as a command of this binary.
fn assert_command(args: &[&str], from: &str) {
    let mut argv = vec!["nanobanana"];
    argv.extend(args);
    if let Err(e) = Cli::try_parse_from(&argv) {
        panic!("{from}: `{}` is not a nanobanana command: {e}", argv.join(" "));
    }
}

fn strings(node: &Yaml) -> Vec<String> {
    node.as_vec()
        .map(|v| v.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// A service with its `<<` merge (the shared `x-app` block) applied, as compose does.
fn effective(service: &Yaml) -> yaml_rust2::yaml::Hash {
    let mut merged = service["<<"].as_hash().cloned().unwrap_or_default();
    for (key, value) in service.as_hash().expect("a service is a mapping") {
        if key.as_str() != Some("<<") {
            merged.insert(key.clone(), value.clone());
        }
    }
    merged
}

fn documented() -> Vec<String> {
    read(".env.example")
        .lines()
        .map(|line| line.trim_start_matches("# "))
        .filter_map(|line| line.split_once('=').map(|(name, _)| name.trim().to_owned()))
        .collect()
}

#[test]
fn deploy_compose_has_every_service_healthchecked_restarted_and_runs_real_commands() {
    let docs = YamlLoader::load_from_str(&read("docker/docker-compose.yml")).expect("valid YAML");
    let compose = &docs[0];
    let services = &compose["services"];
    let documented = documented();
    for name in ["postgres", "redis", "migrate", "serve", "worker"] {
        let service = effective(&services[name]);
        let get = |key: &str| service.get(&Yaml::String(key.to_owned())).cloned().unwrap_or(Yaml::BadValue);
        let restart = get("restart");
        assert!(restart.as_str().is_some(), "{name} has no restart policy");
        if name == "migrate" {
            assert_eq!(restart.as_str(), Some("no"), "a migration runs once");
        } else {
            let test = strings(&get("healthcheck")["test"]);
            assert!(!test.is_empty(), "{name} has no healthcheck");
            if test[0] == "CMD" && test[1] == "nanobanana" {
                let args: Vec<&str> = test[2..].iter().map(String::as_str).collect();
                assert_command(&args, &format!("{name}'s healthcheck"));
            }
        }
        if ["migrate", "serve", "worker"].contains(&name) {
            let command = strings(&get("command"));
            let args: Vec<&str> = command.iter().map(String::as_str).collect();
            assert_command(&args, &format!("compose service {name}"));
            let build = get("build");
            let context = root().join("docker").join(build["context"].as_str().expect("build context"));
            assert!(context.join(build["dockerfile"].as_str().expect("dockerfile")).exists());
            for (var, _) in get("environment").as_hash().expect("environment").iter() {
                let var = var.as_str().expect("variable name");
                assert!(documented.iter().any(|d| d == var), "{name} sets {var}, not in .env.example");
            }
            let depends = get("depends_on");
            let on: Vec<&str> =
                depends.as_hash().expect("depends_on").keys().filter_map(Yaml::as_str).collect();
            if name == "migrate" {
                assert_eq!(on, ["postgres"]);
            } else {
                assert!(on.contains(&"migrate") && on.contains(&"redis"), "{name} depends on {on:?}");
                let volumes = strings(&get("volumes"));
                assert!(volumes.iter().any(|v| v.starts_with("images:")), "{name} must share the images");
            }
        }
    }
    let stop = effective(&services["serve"]);
    let grace = stop.get(&Yaml::String("stop_grace_period".into())).and_then(Yaml::as_str).expect("grace");
    let grace: u64 = grace.trim_end_matches('s').parse().expect("seconds");
    assert!(grace > 20, "stop_grace_period must exceed the default SHUTDOWN_GRACE_SECS");
    for volume in ["pgdata", "images"] {
        assert!(!compose["volumes"][volume].is_badvalue(), "volume {volume} declared");
    }
}

#[test]
fn deploy_procfile_runs_migrate_serve_and_worker() {
    let procfile = read("Procfile");
    let mut kinds = Vec::new();
    for line in procfile.lines().filter(|l| !l.trim().is_empty()) {
        let (kind, command) = line.split_once(':').expect("kind: command");
        let words: Vec<&str> = command.split_whitespace().collect();
        assert_eq!(words[0], "nanobanana", "{line}");
        assert_command(&words[1..], "Procfile");
        kinds.push((kind.trim(), words[1]));
    }
    assert_eq!(kinds, [("release", "migrate"), ("web", "serve"), ("worker", "worker")]);
}

#[test]
fn deploy_dockerfile_copies_what_exists_and_runs_unprivileged() {
    let dockerfile = read("docker/Dockerfile");
    let instructions: Vec<&str> =
        dockerfile.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    assert_eq!(instructions.iter().filter(|l| l.starts_with("FROM ")).count(), 2, "multi-stage");
    for line in instructions.iter().filter(|l| l.starts_with("COPY ") && !l.contains("--from=")) {
        let words: Vec<&str> = line.split_whitespace().skip(1).collect();
        for source in &words[..words.len() - 1] {
            assert!(root().join(source).exists(), "the Dockerfile copies {source}, which does not exist");
        }
    }
    // The sandbox (fakes in-process, a web chat) is for a developer machine, never production.
    let build = instructions.iter().find(|l| l.contains("cargo build")).expect("a cargo build");
    assert!(build.contains("--no-default-features"), "the image leaves the sandbox out: {build}");
    let runtime = dockerfile.split("AS runtime").nth(1).expect("a runtime stage");
    let user = runtime.lines().find_map(|l| l.strip_prefix("USER ")).expect("USER in the runtime stage");
    assert!(!user.starts_with('0') && !user.starts_with("root"), "runs as {user}");
    assert!(runtime.contains("ENTRYPOINT [\"nanobanana\"]"));
    let json_args = |prefix: &str| -> Vec<String> {
        let line = runtime.lines().find_map(|l| l.strip_prefix(prefix)).expect(prefix);
        serde_json::from_str(line.trim()).expect("exec form")
    };
    let cmd = json_args("CMD ");
    assert_command(&cmd.iter().map(String::as_str).collect::<Vec<_>>(), "Dockerfile CMD");
    let health = json_args("HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ");
    assert_eq!(health[0], "nanobanana");
    assert_command(&health[1..].iter().map(String::as_str).collect::<Vec<_>>(), "Dockerfile HEALTHCHECK");
    for line in
        runtime.lines().filter(|l| l.contains('=') && (l.starts_with("ENV ") || l.starts_with("    ")))
    {
        let var = line.trim_start_matches("ENV ").trim().split('=').next().unwrap_or("");
        if var.chars().all(|c| c.is_ascii_uppercase() || c == '_') && !var.is_empty() {
            assert!(documented().iter().any(|d| d == var), "the image sets {var}, not in .env.example");
        }
    }
    let ignore = read(".dockerignore");
    assert!(ignore.lines().any(|l| l.trim() == "target"), "the build context leaves target/ out");
}
