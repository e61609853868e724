//! End-to-end: the sidecar's reloader keeps a real Prometheus 2.42 (`--web.enable-lifecycle`)
//! on the config rendered from a template. The template references `$(SCRAPE_JOB)`, set in
//! the sidecar's environment; the sidecar writes the substituted file Prometheus was started
//! with and reloads it at start-up, again when the template changes, and retries while
//! Prometheus rejects a broken config (keeping its last good one).

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use strata_tests::prom::PrometheusServer;
use strata_tests::sidecar::{
    EXTERNAL_LABELS, http_get, metric_value, start_sidecar_with_env, wait_for,
};

/// The template: external labels (the sidecar requires some), Prometheus scraping itself
/// under the job named by `$(SCRAPE_JOB)`, and `extra` appended to `scrape_configs`.
fn template(port: u16, extra: &str) -> String {
    let mut yaml = String::from("global:\n  scrape_interval: 1s\n  external_labels:\n");
    for (name, value) in EXTERNAL_LABELS {
        yaml.push_str(&format!("    {name}: \"{value}\"\n"));
    }
    yaml.push_str(&format!(
        "scrape_configs:\n  - job_name: \"$(SCRAPE_JOB)\"\n    static_configs:\n      - targets: [\"127.0.0.1:{port}\"]\n{extra}"
    ));
    yaml
}

/// The configuration Prometheus has loaded (`/api/v1/status/config`).
async fn loaded_config(prometheus_url: &str) -> anyhow::Result<String> {
    let (status, body) = http_get(&format!("{prometheus_url}/api/v1/status/config")).await?;
    anyhow::ensure!(status == 200, "status config: {status}: {body}");
    let json: serde_json::Value = serde_json::from_str(&body)?;
    json["data"]["yaml"]
        .as_str()
        .map(str::to_owned)
        .context("no data.yaml in /api/v1/status/config")
}

async fn wait_loaded(prometheus_url: &str, what: &str, needle: &str) -> anyhow::Result<()> {
    wait_for(what, Duration::from_secs(15), || async {
        let yaml = loaded_config(prometheus_url).await?;
        Ok(yaml.contains(needle).then_some(()))
    })
    .await
}

async fn sidecar_metric(sidecar_url: &str, name: &str) -> anyhow::Result<Option<f64>> {
    let (_, text) = http_get(&format!("{sidecar_url}/metrics")).await?;
    Ok(metric_value(&text, name))
}

fn write_template(path: &Path, yaml: &str) -> anyhow::Result<()> {
    // Write-and-rename, so the sidecar never reads half a template.
    let staged = path.with_extension("staged");
    std::fs::write(&staged, yaml)?;
    std::fs::rename(&staged, path)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloader_renders_the_template_and_reloads_prometheus() -> anyhow::Result<()> {
    let data_dir = tempfile::tempdir()?;
    let data_path = data_dir.path().to_path_buf();
    // Started with a config the reloader does not produce: the first reload replaces it.
    let prometheus = tokio::task::spawn_blocking(move || {
        PrometheusServer::start_with(
            &data_path,
            &strata_tests::sidecar::prometheus_config(),
            &["--web.enable-lifecycle"],
        )
    })
    .await??;
    let prometheus_url = prometheus.url();
    let port = prometheus.port();
    anyhow::ensure!(
        !loaded_config(&prometheus_url)
            .await?
            .contains("reloaded-job"),
        "not yet reloaded"
    );

    let template_dir = tempfile::tempdir()?;
    let template_path = template_dir.path().join("prometheus.yml.tmpl");
    write_template(&template_path, &template(port, ""))?;
    let sidecar = start_sidecar_with_env(
        &prometheus_url,
        data_dir.path(),
        &[
            &format!("--reloader.config-file={}", template_path.display()),
            &format!(
                "--reloader.config-envsubst-file={}",
                prometheus.config_path().display()
            ),
            "--reloader.watch-interval=1s",
            "--reloader.retry-interval=500ms",
        ],
        &[("SCRAPE_JOB", "reloaded-job")],
    )
    .await?;
    let sidecar_url = sidecar.http_url();

    // At start-up: the substituted file is written and Prometheus reloads it.
    wait_loaded(&prometheus_url, "start-up reload", "job_name: reloaded-job").await?;
    let written = std::fs::read_to_string(prometheus.config_path())?;
    anyhow::ensure!(
        written.contains("job_name: \"reloaded-job\"") && !written.contains("$("),
        "substituted file:\n{written}"
    );

    // A template change: a second job, reloaded within a few watch intervals.
    let second_job = "  - job_name: \"second-$(SCRAPE_JOB)\"\n    static_configs:\n      - targets: [\"127.0.0.1:1\"]\n";
    write_template(&template_path, &template(port, second_job))?;
    wait_loaded(
        &prometheus_url,
        "reload after the template changed",
        "job_name: second-reloaded-job",
    )
    .await?;
    wait_for("reload metrics", Duration::from_secs(5), || async {
        let reloads = sidecar_metric(&sidecar_url, "thanos_sidecar_reloader_reloads_total")
            .await?
            .unwrap_or(0.0);
        let last = sidecar_metric(
            &sidecar_url,
            "thanos_sidecar_reloader_last_reload_successful",
        )
        .await?;
        Ok((reloads >= 2.0 && last == Some(1.0)).then_some(()))
    })
    .await?;

    // A config Prometheus rejects: the reload fails and is retried; Prometheus keeps the
    // last good config.
    let broken_job = "  - job_name: \"broken\"\n    scrape_interval: not-a-duration\n";
    write_template(&template_path, &template(port, broken_job))?;
    wait_for("failed reloads", Duration::from_secs(15), || async {
        let failed = sidecar_metric(&sidecar_url, "thanos_sidecar_reloader_reloads_failed_total")
            .await?
            .unwrap_or(0.0);
        let last = sidecar_metric(
            &sidecar_url,
            "thanos_sidecar_reloader_last_reload_successful",
        )
        .await?;
        Ok((failed >= 2.0 && last == Some(0.0)).then_some(()))
    })
    .await?;
    anyhow::ensure!(
        loaded_config(&prometheus_url)
            .await?
            .contains("job_name: second-reloaded-job"),
        "prometheus kept its last good config"
    );

    // Fixed: reloaded again.
    write_template(&template_path, &template(port, ""))?;
    wait_for("config fixed", Duration::from_secs(15), || async {
        let yaml = loaded_config(&prometheus_url).await?;
        let last = sidecar_metric(
            &sidecar_url,
            "thanos_sidecar_reloader_last_reload_successful",
        )
        .await?;
        Ok((!yaml.contains("second-reloaded-job") && last == Some(1.0)).then_some(()))
    })
    .await?;

    let (status, _) = sidecar.stop(Duration::from_secs(15)).await?;
    anyhow::ensure!(status.success(), "sidecar exit: {status}");
    Ok(())
}
