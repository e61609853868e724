//! Turns a [`BucketConfig`] into an `object_store` store plus the [`BucketOptions`] it implies.
//!
//! S3, GCS and Azure get an HTTP client built here rather than by `object_store`'s
//! `ClientOptions`, for three reasons:
//! - TCP_NODELAY. Some S3 servers stall ~40 ms per kept-alive GET when Nagle's algorithm meets
//!   delayed ACKs. `object_store` 0.12 has no option for it; it relies on reqwest's default
//!   (`tcp_nodelay = true` since reqwest 0.11). We set it explicitly so that a dependency
//!   update cannot silently turn it off.
//! - Timeouts with Thanos's meaning: `object_store`'s default 30 s *total* request timeout would
//!   cut off a large chunk-file download; we use `response_header_timeout` as a read-idle
//!   timeout instead and bound whole operations in [`super::Bucket`].
//! - `tls_config`: CA file and client certificate (mTLS), which `ClientOptions` cannot take.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::client::{HttpClient, HttpConnector};
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;
use object_store::{Attribute, Attributes, BackoffConfig, ClientOptions, ObjectStore, RetryConfig};

use super::bucket::BucketOptions;
use super::config::{
    AzureConfig, Backend, BucketConfig, BucketLookupType, DEFAULT_PART_SIZE, FilesystemConfig,
    GcsConfig, HttpConfig, S3Config,
};
use super::{Error, Result};

/// Retries `object_store` makes per HTTP request when the config does not say (minio-go's).
const DEFAULT_MAX_RETRIES: usize = 10;

/// A built store and the options the config implies for the [`super::Bucket`] around it.
pub struct BuiltStore {
    pub store: Arc<dyn ObjectStore>,
    pub options: BucketOptions,
}

impl std::fmt::Debug for BuiltStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltStore")
            .field("store", &self.store.to_string())
            .field("options", &self.options)
            .finish()
    }
}

/// Builds the store for `config`, with its `prefix` applied.
pub fn build_store(config: &BucketConfig) -> Result<BuiltStore> {
    let mut options = BucketOptions::default();
    let store: Arc<dyn ObjectStore> = match &config.backend {
        Backend::S3(s3) => build_s3(s3, &mut options)?,
        Backend::Gcs(gcs) => build_gcs(gcs, &mut options)?,
        Backend::Azure(azure) => build_azure(azure, &mut options)?,
        Backend::Filesystem(fs) => build_filesystem(fs)?,
    };
    let store: Arc<dyn ObjectStore> = if config.prefix.is_empty() {
        store
    } else {
        let prefix = object_store::path::Path::parse(&config.prefix).map_err(|error| {
            Error::InvalidField {
                field: "prefix",
                reason: error.to_string(),
            }
        })?;
        Arc::new(PrefixStore::new(store, prefix))
    };
    Ok(BuiltStore { store, options })
}

fn build_filesystem(fs: &FilesystemConfig) -> Result<Arc<dyn ObjectStore>> {
    std::fs::create_dir_all(&fs.directory).map_err(|error| Error::CreateDirectory {
        path: fs.directory.clone(),
        error,
    })?;
    // Automatic cleanup removes directories left empty by a delete, so a deleted block leaves
    // no empty `<ULID>/` behind that a lister would take for a partial upload.
    let store = LocalFileSystem::new_with_prefix(&fs.directory)
        .map_err(|error| Error::Build {
            kind: "FILESYSTEM",
            error,
        })?
        .with_automatic_cleanup(true);
    Ok(Arc::new(store))
}

fn retry_config(max_retries: Option<usize>, retry_timeout: Duration) -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig::default(),
        max_retries: max_retries.unwrap_or(DEFAULT_MAX_RETRIES),
        retry_timeout,
    }
}

fn apply_http_options(http: &HttpConfig, options: &mut BucketOptions) {
    // A whole-operation attempt may wait for headers up to response_header_timeout; give it a
    // little more so the HTTP client reports first (its message is more precise).
    options.operation_timeout = http.response_header_timeout.get() + Duration::from_secs(10);
}

fn build_s3(s3: &S3Config, options: &mut BucketOptions) -> Result<Arc<dyn ObjectStore>> {
    // Without keys in the config, credentials come from the environment (AWS_ACCESS_KEY_ID,
    // web identity, ECS/EC2 instance metadata), as with Thanos's aws_sdk_auth / IAM chain.
    let mut builder = if s3.access_key.is_empty() {
        AmazonS3Builder::from_env()
    } else {
        AmazonS3Builder::new()
            .with_access_key_id(&s3.access_key)
            .with_secret_access_key(s3.secret_key.expose())
    };
    if !s3.session_token.is_empty() {
        builder = builder.with_token(s3.session_token.expose());
    }
    let region = resolve_region(s3);
    let virtual_hosted = use_virtual_hosted(s3);
    let scheme = if s3.insecure { "http" } else { "https" };
    builder = builder
        .with_bucket_name(&s3.bucket)
        .with_region(region)
        .with_allow_http(s3.insecure)
        .with_virtual_hosted_style_request(virtual_hosted)
        .with_retry(retry_config(
            s3.max_retries,
            s3.http_config.response_header_timeout.get(),
        ))
        .with_http_connector(StrataHttpConnector::new(&s3.http_config, s3.insecure)?);
    if !s3.endpoint.is_empty() {
        // object_store wants the bucket inside a virtual-hosted endpoint URL.
        let endpoint = if virtual_hosted {
            format!("{scheme}://{}.{}", s3.bucket, s3.endpoint)
        } else {
            format!("{scheme}://{}", s3.endpoint)
        };
        builder = builder.with_endpoint(endpoint);
    }
    match s3.sse_config.kind.as_str() {
        "SSE-S3" => {
            let key = "aws_server_side_encryption"
                .parse::<object_store::aws::AmazonS3ConfigKey>()
                .map_err(|error| Error::Build { kind: "S3", error })?;
            builder = builder.with_config(key, "AES256");
        }
        "SSE-KMS" => {
            if !s3.sse_config.kms_encryption_context.is_empty() {
                return Err(Error::InvalidField {
                    field: "config.sse_config.kms_encryption_context",
                    reason: "a KMS encryption context is not supported".to_string(),
                });
            }
            builder = builder.with_sse_kms_encryption(&s3.sse_config.kms_key_id);
        }
        "SSE-C" => {
            let key = read_config_file("SSE-C key", Path::new(&s3.sse_config.encryption_key))?;
            builder = builder.with_ssec_encryption(base64_encode(&key));
        }
        _ => {}
    }
    let store = builder
        .build()
        .map_err(|error| Error::Build { kind: "S3", error })?;

    apply_http_options(&s3.http_config, options);
    options.part_size = if s3.part_size == 0 {
        DEFAULT_PART_SIZE
    } else {
        s3.part_size
    };
    options.disable_multipart = s3.disable_multipart;
    options.put_attributes = put_attributes(&s3.put_user_metadata);
    Ok(Arc::new(store))
}

/// Thanos reads the storage class out of `put_user_metadata["X-Amz-Storage-Class"]`; every
/// other entry becomes user metadata (`x-amz-meta-*`).
fn put_attributes(metadata: &std::collections::BTreeMap<String, String>) -> Attributes {
    let mut attributes = Attributes::new();
    for (key, value) in metadata {
        if key.eq_ignore_ascii_case("x-amz-storage-class") {
            attributes.insert(Attribute::StorageClass, value.clone().into());
        } else {
            attributes.insert(
                Attribute::Metadata(key.clone().into()),
                value.clone().into(),
            );
        }
    }
    attributes
}

/// The region to sign with: the configured one, else the one named in an AWS endpoint
/// (`s3.eu-west-1.amazonaws.com`, `s3-eu-west-1.amazonaws.com`), else us-east-1 (what moto,
/// MinIO and most S3-compatible servers accept).
fn resolve_region(s3: &S3Config) -> String {
    if !s3.region.is_empty() {
        return s3.region.clone();
    }
    let host = s3.endpoint.split(':').next().unwrap_or("");
    if let Some(rest) = host.strip_suffix(".amazonaws.com") {
        let region = rest
            .strip_prefix("s3.")
            .or_else(|| rest.strip_prefix("s3-"))
            .unwrap_or("");
        if !region.is_empty() && !region.contains('.') {
            return region.to_string();
        }
    }
    "us-east-1".to_string()
}

/// minio-go's `auto` rule: virtual-hosted requests for AWS (and the other big clouds) when the
/// bucket name is DNS-safe, path style for everything else (MinIO, moto, Ceph, garage).
fn use_virtual_hosted(s3: &S3Config) -> bool {
    match s3.bucket_lookup_type {
        BucketLookupType::VirtualHosted => true,
        BucketLookupType::Path => false,
        BucketLookupType::Auto => {
            let host = s3.endpoint.split(':').next().unwrap_or("");
            let cloud = host.is_empty()
                || host.ends_with(".amazonaws.com")
                || host.ends_with(".aliyuncs.com")
                || host.ends_with(".googleapis.com");
            cloud && !s3.bucket.contains('.')
        }
    }
}

fn build_gcs(gcs: &GcsConfig, options: &mut BucketOptions) -> Result<Arc<dyn ObjectStore>> {
    let mut builder = if gcs.service_account.is_empty() {
        GoogleCloudStorageBuilder::from_env()
    } else {
        GoogleCloudStorageBuilder::new().with_service_account_key(gcs.service_account.expose())
    };
    builder = builder
        .with_bucket_name(&gcs.bucket)
        .with_retry(retry_config(
            gcs.max_retries,
            gcs.http_config.response_header_timeout.get(),
        ))
        .with_http_connector(StrataHttpConnector::new(&gcs.http_config, false)?);
    let store = builder
        .build()
        .map_err(|error| Error::Build { kind: "GCS", error })?;
    apply_http_options(&gcs.http_config, options);
    if gcs.chunk_size_bytes >= super::config::MIN_PART_SIZE {
        options.part_size = gcs.chunk_size_bytes;
    }
    Ok(Arc::new(store))
}

fn build_azure(azure: &AzureConfig, options: &mut BucketOptions) -> Result<Arc<dyn ObjectStore>> {
    let mut builder = MicrosoftAzureBuilder::from_env();
    let mut account = azure.storage_account.clone();
    let mut account_key = azure.storage_account_key.expose().to_string();
    let mut endpoint_url = None;
    if !azure.storage_connection_string.is_empty() {
        // "DefaultEndpointsProtocol=https;AccountName=..;AccountKey=..;BlobEndpoint=.."
        for part in azure.storage_connection_string.expose().split(';') {
            let Some((key, value)) = part.split_once('=') else {
                continue;
            };
            match key.trim() {
                "AccountName" if account.is_empty() => account = value.to_string(),
                "AccountKey" if account_key.is_empty() => account_key = value.to_string(),
                "BlobEndpoint" => endpoint_url = Some(value.trim_end_matches('/').to_string()),
                _ => {}
            }
        }
    }
    if account.is_empty() {
        return Err(Error::MissingField {
            field: "config.storage_account",
        });
    }
    builder = builder
        .with_account(&account)
        .with_container_name(&azure.container);
    if !account_key.is_empty() {
        builder = builder.with_access_key(account_key);
    }
    if !azure.client_id.is_empty() {
        builder = builder.with_client_id(&azure.client_id);
    } else if !azure.user_assigned_id.is_empty() {
        builder = builder.with_client_id(&azure.user_assigned_id);
    }
    if !azure.client_secret.is_empty() {
        builder = builder.with_client_secret(azure.client_secret.expose());
    }
    if !azure.az_tenant_id.is_empty() {
        builder = builder.with_tenant_id(&azure.az_tenant_id);
    }
    if !azure.msi_resource.is_empty() {
        builder = builder.with_config(
            object_store::azure::AzureConfigKey::MsiResourceId,
            &azure.msi_resource,
        );
    }
    let endpoint_url = endpoint_url.or_else(|| {
        (azure.endpoint != "blob.core.windows.net" && !azure.endpoint.is_empty())
            .then(|| format!("https://{account}.{}", azure.endpoint))
    });
    if let Some(url) = endpoint_url {
        builder = builder.with_endpoint(url);
    }
    let max_retries = azure.max_retries.or_else(|| {
        (azure.pipeline_config.max_tries > 0).then(|| azure.pipeline_config.max_tries - 1)
    });
    builder = builder
        .with_retry(retry_config(
            max_retries,
            azure.http_config.response_header_timeout.get(),
        ))
        .with_http_connector(StrataHttpConnector::new(&azure.http_config, false)?);
    let store = builder.build().map_err(|error| Error::Build {
        kind: "AZURE",
        error,
    })?;
    apply_http_options(&azure.http_config, options);
    Ok(Arc::new(store))
}

fn read_config_file(what: &'static str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|error| Error::ReadConfigFile {
        what,
        path: PathBuf::from(path),
        error,
    })
}

/// Standard base64 with padding (only the SSE-C key needs it; not worth a dependency).
fn base64_encode(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b0 = chunk.first().copied().unwrap_or(0) as u32;
        let b1 = chunk.get(1).copied().unwrap_or(0) as u32;
        let b2 = chunk.get(2).copied().unwrap_or(0) as u32;
        let triple = (b0 << 16) | (b1 << 8) | b2;
        for (index, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if index <= chunk.len() {
                let sextet = ((triple >> shift) & 0x3f) as usize;
                out.push(ALPHABET.get(sextet).copied().map_or('A', char::from));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The HTTP client factory handed to the cloud builders (see the module header for why).
#[derive(Debug, Clone)]
struct StrataHttpConnector {
    http: HttpConfig,
    allow_http: bool,
    root_certificate: Option<reqwest::Certificate>,
    identity: Option<reqwest::Identity>,
}

impl StrataHttpConnector {
    /// Reads and checks the TLS files now, so a bad path is a startup error naming the file.
    fn new(http: &HttpConfig, allow_http: bool) -> Result<Self> {
        let tls = &http.tls_config;
        let root_certificate = if tls.ca_file.is_empty() {
            None
        } else {
            let pem = read_config_file("CA certificate", Path::new(&tls.ca_file))?;
            Some(
                reqwest::Certificate::from_pem(&pem).map_err(|error| Error::InvalidField {
                    field: "config.http_config.tls_config.ca_file",
                    reason: error.to_string(),
                })?,
            )
        };
        let identity = if tls.cert_file.is_empty() {
            None
        } else {
            let mut pem = read_config_file("client certificate", Path::new(&tls.cert_file))?;
            pem.push(b'\n');
            pem.extend(read_config_file("client key", Path::new(&tls.key_file))?);
            Some(
                reqwest::Identity::from_pem(&pem).map_err(|error| Error::InvalidField {
                    field: "config.http_config.tls_config.cert_file",
                    reason: error.to_string(),
                })?,
            )
        };
        Ok(StrataHttpConnector {
            http: http.clone(),
            allow_http,
            root_certificate,
            identity,
        })
    }

    fn client(&self) -> reqwest::Result<reqwest::Client> {
        let http = &self.http;
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("strata/", env!("CARGO_PKG_VERSION")))
            .tcp_nodelay(true)
            .tcp_keepalive(Duration::from_secs(30))
            .connect_timeout(http.tls_handshake_timeout.get().max(Duration::from_secs(1)))
            .read_timeout(
                http.response_header_timeout
                    .get()
                    .max(Duration::from_secs(1)),
            )
            .pool_idle_timeout(http.idle_conn_timeout.get())
            .pool_max_idle_per_host(http.max_idle_conns_per_host)
            // object_store relies on Content-Length matching the object size.
            .no_gzip()
            .no_brotli()
            .no_deflate()
            .no_zstd()
            .https_only(!self.allow_http);
        if !http.force_attempt_http2 {
            builder = builder.http1_only();
        }
        if http.insecure_skip_verify || http.tls_config.insecure_skip_verify {
            builder = builder.danger_accept_invalid_certs(true);
        }
        if let Some(certificate) = &self.root_certificate {
            builder = builder.add_root_certificate(certificate.clone());
        }
        if let Some(identity) = &self.identity {
            builder = builder.identity(identity.clone());
        }
        builder.build()
    }
}

impl HttpConnector for StrataHttpConnector {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        let client = self
            .client()
            .map_err(|error| object_store::Error::Generic {
                store: "HTTP client",
                source: Box::new(error),
            })?;
        Ok(HttpClient::new(client))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objstore::config::BucketConfig;

    fn s3(yaml: &str) -> S3Config {
        match BucketConfig::parse(yaml).map(|config| config.backend) {
            Ok(Backend::S3(s3)) => s3,
            other => panic!("expected an S3 config, got {other:?}"),
        }
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(input.as_bytes()), expected, "input {input:?}");
        }
    }

    #[test]
    fn lookup_type_auto_is_virtual_hosted_only_for_aws() {
        let aws = s3("type: S3\nconfig: {bucket: b, endpoint: s3.eu-west-1.amazonaws.com}");
        assert!(use_virtual_hosted(&aws));
        assert_eq!(resolve_region(&aws), "eu-west-1");
        let minio = s3("type: S3\nconfig: {bucket: b, endpoint: 'minio:9000'}");
        assert!(!use_virtual_hosted(&minio));
        assert_eq!(resolve_region(&minio), "us-east-1");
        let dotted = s3("type: S3\nconfig: {bucket: a.b, endpoint: s3.amazonaws.com}");
        assert!(!use_virtual_hosted(&dotted));
        let forced = s3(
            "type: S3\nconfig: {bucket: b, endpoint: 'minio:9000', bucket_lookup_type: virtual-hosted}",
        );
        assert!(use_virtual_hosted(&forced));
        let path = s3(
            "type: S3\nconfig: {bucket: b, endpoint: s3.amazonaws.com, bucket_lookup_type: path}",
        );
        assert!(!use_virtual_hosted(&path));
    }

    #[test]
    fn storage_class_is_taken_out_of_user_metadata() {
        let config = s3(
            "type: S3\nconfig:\n  bucket: b\n  endpoint: 'x:1'\n  put_user_metadata:\n    X-Amz-Storage-Class: STANDARD_IA\n    team: obs\n",
        );
        let attributes = put_attributes(&config.put_user_metadata);
        assert_eq!(
            attributes.get(&Attribute::StorageClass).map(|v| v.as_ref()),
            Some("STANDARD_IA")
        );
        assert_eq!(
            attributes
                .get(&Attribute::Metadata("team".into()))
                .map(|v| v.as_ref()),
            Some("obs")
        );
        assert_eq!(attributes.len(), 2);
    }

    #[test]
    fn filesystem_creates_missing_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bucket_dir = dir.path().join("a/b/c");
        let config = BucketConfig::parse(&format!(
            "type: FILESYSTEM\nconfig:\n  directory: {}\n",
            bucket_dir.display()
        ))
        .expect("valid config");
        build_store(&config).expect("build");
        assert!(bucket_dir.is_dir());
    }

    #[test]
    fn missing_tls_file_is_named() {
        let config = BucketConfig::parse(
            "type: S3\nconfig:\n  bucket: b\n  endpoint: 'x:1'\n  http_config:\n    tls_config:\n      ca_file: /nonexistent/ca.pem\n",
        )
        .expect("valid config");
        let error = build_store(&config).expect_err("missing CA file");
        assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");
    }
}
