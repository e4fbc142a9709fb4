//! A small OCI distribution client with bounds on everything a registry controls.
//!
//! Why not `oci-client`: it reads manifest and referrers bodies whole (`res.bytes()`), so a
//! hostile or broken registry can make custody allocate without limit; it has no total-request
//! timeout, no retry policy and no request accounting. Those are the properties an admission
//! verifier needs most, and they sit in the few hundred lines below (docs/decisions.md §9).
//!
//! Guarantees: every body is read with a size cap (manifests, blobs, tokens); every request runs
//! under `min(request_timeout, time left to the deadline)`; retries happen only for transient
//! failures (429, 5xx, connection errors, timeouts), at most `max_retries` times, waiting
//! `Retry-After` (capped) or an exponential backoff, never past the deadline; content fetched
//! by digest is hashed and compared; a manifest fetched by tag is compared with the registry's
//! `Docker-Content-Digest`; plain HTTP only for registries listed as insecure, and a redirect
//! never downgrades HTTPS to HTTP; a tag list's pagination `Link` is followed only within the
//! repository being listed, and the list is bounded in pages and tags.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, LINK, RETRY_AFTER,
    WWW_AUTHENTICATE,
};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::RegistryError;
use super::auth::{Challenge, Credentials, Resolved, parse_challenge};
use crate::evidence::oci::{MANIFEST_MEDIA_TYPES, digest_of};
use crate::reference::{Digest, ImageRef};

/// Tags asked for per page of a tag list (`n`); a registry may send fewer and link the next page.
const TAG_PAGE_SIZE: usize = 1000;
/// Most pages of one tag list custody reads.
const MAX_TAG_PAGES: usize = 100;

/// Registry client settings. `Default` is what the CLI uses.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Registries (`host[:port]`) reached over plain HTTP. Everything else is HTTPS.
    pub insecure_registries: Vec<String>,
    /// If set, only these registries may be contacted (the service's allow-list).
    pub allowed_registries: Option<Vec<String>>,
    /// Extra CA certificates (PEM) trusted for registry TLS, besides the system roots.
    pub ca_certificates_pem: Option<Vec<u8>>,
    /// How to authenticate.
    pub credentials: Credentials,
    /// Timeout of one HTTP request, body included (default 10 s).
    pub request_timeout: Duration,
    /// Connection timeout (default 5 s).
    pub connect_timeout: Duration,
    /// Retries after a transient failure (default 2, so at most 3 attempts).
    pub max_retries: u32,
    /// Longest wait between attempts, whatever `Retry-After` says (default 2 s).
    pub max_retry_wait: Duration,
    /// Concurrent requests per client (default 8).
    pub max_concurrency: usize,
    /// Largest manifest or referrers index (default 4 MiB; the distribution spec suggests 4 MiB).
    pub max_manifest_bytes: u64,
    /// Largest evidence blob: payload, envelope, bundle, SBOM (default 16 MiB).
    pub max_blob_bytes: u64,
    /// Largest token response (default 64 KiB).
    pub max_token_bytes: u64,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            insecure_registries: Vec::new(),
            allowed_registries: None,
            ca_certificates_pem: None,
            credentials: Credentials::Anonymous,
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            max_retries: 2,
            max_retry_wait: Duration::from_secs(2),
            max_concurrency: 8,
            max_manifest_bytes: 4 << 20,
            max_blob_bytes: 16 << 20,
            max_token_bytes: 64 << 10,
        }
    }
}

/// When an operation must be finished.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
    total: Duration,
}

impl Deadline {
    /// A deadline `total` from now.
    pub fn after(total: Duration) -> Self {
        Self {
            at: Instant::now() + total,
            total,
        }
    }

    /// Time left, or the error naming what was in progress.
    pub fn remaining(&self, doing: &str) -> Result<Duration, RegistryError> {
        let left = self.at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(self.exceeded(doing));
        }
        Ok(left)
    }

    fn exceeded(&self, doing: &str) -> RegistryError {
        RegistryError::DeadlineExceeded {
            doing: doing.to_owned(),
            deadline_ms: u64::try_from(self.total.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// A manifest or blob as fetched and checked.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The bytes (within the limit).
    pub bytes: Vec<u8>,
    /// Their digest (verified against what was asked for or announced).
    pub digest: Digest,
    /// The registry's `Content-Type`.
    pub content_type: Option<String>,
    /// Where it came from.
    pub url: String,
}

/// The OCI distribution client.
pub struct RegistryClient {
    http: reqwest::Client,
    config: RegistryConfig,
    /// `Authorization` header values by `registry/repository`.
    auth: Mutex<HashMap<String, String>>,
    requests: AtomicU64,
    permits: Semaphore,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// A request as [`RegistryClient::execute`] sends it (and re-sends it on a retry).
struct Outgoing<'a> {
    method: reqwest::Method,
    url: String,
    accept: &'a str,
    /// `(Content-Type, bytes)`.
    body: Option<(&'a str, &'a [u8])>,
    /// Whether the request writes (a token then needs `pull,push`).
    push: bool,
}

/// What the registry said when a manifest was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedManifest {
    /// The manifest's digest (computed; the registry's `Docker-Content-Digest` must agree).
    pub digest: Digest,
    /// Where it was stored.
    pub url: String,
    /// Whether the registry indexed the manifest's `subject` itself (it answered with an
    /// `OCI-Subject` header, OCI distribution 1.1): if not, a client keeps the referrers tag
    /// schema index up to date.
    pub subject_indexed: bool,
}

impl RegistryClient {
    /// Builds a client.
    ///
    /// # Errors
    /// [`RegistryError::Config`] when the CA bundle does not parse or TLS cannot be set up.
    pub fn new(config: RegistryConfig) -> Result<Self, RegistryError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("custody/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                let downgrade = attempt
                    .previous()
                    .last()
                    .is_some_and(|p| p.scheme() == "https")
                    && attempt.url().scheme() != "https";
                if downgrade {
                    attempt.error("refusing a redirect from HTTPS to plain HTTP")
                } else if attempt.previous().len() > 5 {
                    attempt.error("more than 5 redirects")
                } else {
                    attempt.follow()
                }
            }));
        if let Some(pem) = &config.ca_certificates_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| RegistryError::Config(format!("CA bundle: {e}")))?;
            if certs.is_empty() {
                return Err(RegistryError::Config(
                    "CA bundle holds no certificate".into(),
                ));
            }
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let http = builder
            .build()
            .map_err(|e| RegistryError::Config(e.to_string()))?;
        Ok(Self {
            permits: Semaphore::new(config.max_concurrency.max(1)),
            http,
            config,
            auth: Mutex::new(HashMap::new()),
            requests: AtomicU64::new(0),
        })
    }

    /// HTTP requests sent so far (token requests included).
    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The settings.
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// Fetches a manifest by tag or digest (the reference's digest wins over its tag).
    ///
    /// # Errors
    /// [`RegistryError::NotFound`] on 404; size, digest, status and transport errors.
    pub async fn manifest(
        &self,
        image: &ImageRef,
        deadline: &Deadline,
    ) -> Result<Fetched, RegistryError> {
        let reference = match (image.digest(), image.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_owned(),
            (None, None) => "latest".to_owned(),
        };
        let what = format!("manifest {}", image);
        let reply = self
            .get(
                image,
                &format!("manifests/{reference}"),
                &MANIFEST_MEDIA_TYPES.join(", "),
                &what,
                self.config.max_manifest_bytes,
                deadline,
            )
            .await?;
        let url = self.url(image, &format!("manifests/{reference}"));
        let announced =
            header(&reply.headers, "docker-content-digest").and_then(|h| h.parse::<Digest>().ok());
        let expected = image.digest().cloned().or(announced);
        let digest = match &expected {
            Some(e) => {
                let computed = digest_of(e.algorithm(), &reply.body);
                if &computed != e {
                    return Err(RegistryError::DigestMismatch {
                        what,
                        url,
                        expected: e.to_string(),
                        computed: computed.to_string(),
                    });
                }
                computed
            }
            None => Digest::sha256_of(&reply.body),
        };
        Ok(Fetched {
            content_type: header(&reply.headers, CONTENT_TYPE.as_str()).map(str::to_owned),
            bytes: reply.body,
            digest,
            url,
        })
    }

    /// Like [`Self::manifest`], but 404 is `Ok(None)`.
    ///
    /// # Errors
    /// As [`Self::manifest`], except not-found.
    pub async fn manifest_if_exists(
        &self,
        image: &ImageRef,
        deadline: &Deadline,
    ) -> Result<Option<Fetched>, RegistryError> {
        match self.manifest(image, deadline).await {
            Ok(f) => Ok(Some(f)),
            Err(RegistryError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Fetches a blob of `image`'s repository by digest, at most `max` bytes, and checks its digest.
    ///
    /// # Errors
    /// As [`Self::manifest`].
    pub async fn blob(
        &self,
        image: &ImageRef,
        digest: &Digest,
        max: u64,
        deadline: &Deadline,
    ) -> Result<Fetched, RegistryError> {
        let path = format!("blobs/{digest}");
        let what = format!("blob {digest} of {}", image.name());
        let reply = self
            .get(
                image,
                &path,
                "*/*",
                &what,
                max.min(self.config.max_blob_bytes),
                deadline,
            )
            .await?;
        let url = self.url(image, &path);
        let computed = digest_of(digest.algorithm(), &reply.body);
        if &computed != digest {
            return Err(RegistryError::DigestMismatch {
                what,
                url,
                expected: digest.to_string(),
                computed: computed.to_string(),
            });
        }
        Ok(Fetched {
            content_type: header(&reply.headers, CONTENT_TYPE.as_str()).map(str::to_owned),
            bytes: reply.body,
            digest: computed,
            url,
        })
    }

    /// The OCI 1.1 referrers index of `digest`, or `None` when the registry does not implement
    /// the referrers API (404), in which case the caller falls back to the tag schema.
    ///
    /// # Errors
    /// As [`Self::manifest`].
    pub async fn referrers(
        &self,
        image: &ImageRef,
        digest: &Digest,
        deadline: &Deadline,
    ) -> Result<Option<Fetched>, RegistryError> {
        let path = format!("referrers/{digest}");
        let what = format!("referrers of {}@{digest}", image.name());
        match self
            .get(
                image,
                &path,
                "application/vnd.oci.image.index.v1+json",
                &what,
                self.config.max_manifest_bytes,
                deadline,
            )
            .await
        {
            Ok(reply) => Ok(Some(Fetched {
                content_type: header(&reply.headers, CONTENT_TYPE.as_str()).map(str::to_owned),
                digest: Digest::sha256_of(&reply.body),
                bytes: reply.body,
                url: self.url(image, &path),
            })),
            Err(RegistryError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Resolves `image` (a tag) to the digest the registry serves for it.
    ///
    /// # Errors
    /// As [`Self::manifest`].
    pub async fn resolve(
        &self,
        image: &ImageRef,
        deadline: &Deadline,
    ) -> Result<Digest, RegistryError> {
        Ok(self.manifest(image, deadline).await?.digest)
    }

    /// Lists the tags of `image`'s repository (its tag and digest are ignored), in the order the
    /// registry sends them, each once.
    ///
    /// Pages are requested with `n=1000` and followed through `Link: <…>; rel="next"`
    /// (distribution spec, "Listing Tags"). A link is followed only when it stays on the same
    /// scheme, registry and repository path (`/v2/<repository>/tags/list`), so a hostile registry
    /// cannot send the repository's credentials elsewhere. A full page without a link is
    /// followed with the spec's `last` parameter, so a registry that paginates without links does
    /// not silently truncate the list.
    ///
    /// # Limits
    /// Each page body is at most `max_manifest_bytes`; at most 100 pages; at most `max_tags`
    /// distinct tags. Every tag must be a valid tag (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`).
    ///
    /// # Errors
    /// [`RegistryError::NotFound`] when the repository does not exist;
    /// [`RegistryError::TooMany`] past `max_tags` tags or 100 pages (never a truncated list);
    /// [`RegistryError::ForeignLink`] for a next-page link outside the repository;
    /// [`RegistryError::Malformed`] for a body that is not a tag list, an invalid tag, an
    /// unparsable `Link`, or a link back to a page already read; status, size, transport and
    /// deadline errors as [`Self::manifest`].
    pub async fn tags(
        &self,
        image: &ImageRef,
        deadline: &Deadline,
        max_tags: usize,
    ) -> Result<Vec<String>, RegistryError> {
        let list_url = self.url(image, "tags/list");
        let base = reqwest::Url::parse(&list_url)
            .map_err(|e| RegistryError::Config(format!("tag list URL {list_url}: {e}")))?;
        let mut tags = Vec::new();
        let mut seen = HashSet::new();
        let mut query = format!("n={TAG_PAGE_SIZE}");
        let mut visited = HashSet::from([query.clone()]);
        for page in 1..=MAX_TAG_PAGES {
            let path = if query.is_empty() {
                "tags/list".to_owned()
            } else {
                format!("tags/list?{query}")
            };
            let what = format!("tag list of {} (page {page})", image.name());
            let reply = self
                .get(
                    image,
                    &path,
                    "application/json",
                    &what,
                    self.config.max_manifest_bytes,
                    deadline,
                )
                .await?;
            let url = self.url(image, &path);
            let malformed = |detail: String| RegistryError::Malformed {
                what: what.clone(),
                url: url.clone(),
                detail,
            };
            #[derive(serde::Deserialize)]
            struct TagList {
                tags: Option<Vec<String>>,
            }
            let list: TagList = serde_json::from_slice(&reply.body)
                .map_err(|e| malformed(format!("not a tag list: {e}")))?;
            let page_tags = list.tags.unwrap_or_default();
            let mut added = 0usize;
            for tag in &page_tags {
                if !is_valid_tag(tag) {
                    return Err(malformed(format!(
                        "{:?} is not a valid tag",
                        tag.chars().take(140).collect::<String>()
                    )));
                }
                if seen.insert(tag.clone()) {
                    tags.push(tag.clone());
                    added += 1;
                }
            }
            if tags.len() > max_tags {
                return Err(RegistryError::TooMany {
                    what: format!("tags of {}", image.name()),
                    found: tags.len(),
                    max: max_tags,
                });
            }
            let mut page_url = base.clone();
            page_url.set_query(Some(&query).filter(|q| !q.is_empty()).map(String::as_str));
            let links = reply
                .headers
                .get_all(LINK)
                .iter()
                .map(|v| {
                    v.to_str()
                        .map_err(|_| malformed("a Link header is not text".into()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let next =
                next_tag_page(&base, &page_url, &links, &page_tags, added).map_err(
                    |e| match e {
                        NextPageError::Malformed(detail) => malformed(detail),
                        NextPageError::Foreign(link) => RegistryError::ForeignLink {
                            what: what.clone(),
                            url: url.clone(),
                            link,
                            expected: base.to_string(),
                        },
                    },
                )?;
            match next {
                None => return Ok(tags),
                Some(q) if !visited.insert(q.clone()) => {
                    return Err(malformed(format!(
                        "its next page (?{q}) is a page already read"
                    )));
                }
                Some(q) => query = q,
            }
        }
        Err(RegistryError::TooMany {
            what: format!("pages of the tag list of {}", image.name()),
            found: MAX_TAG_PAGES + 1,
            max: MAX_TAG_PAGES,
        })
    }

    /// Whether a blob exists in `image`'s repository (`HEAD /v2/<repo>/blobs/<digest>`).
    ///
    /// # Errors
    /// Status, transport and deadline errors as [`Self::manifest`] (not-found is `Ok(false)`).
    pub async fn blob_exists(
        &self,
        image: &ImageRef,
        digest: &Digest,
        deadline: &Deadline,
    ) -> Result<bool, RegistryError> {
        let request = Outgoing {
            method: reqwest::Method::HEAD,
            url: self.url(image, &format!("blobs/{digest}")),
            accept: "*/*",
            body: None,
            push: false,
        };
        let what = format!("blob {digest} of {}", image.name());
        match self.execute(image, &request, &what, 0, deadline).await {
            Ok(_) => Ok(true),
            Err(RegistryError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Uploads `bytes` as a blob of `image`'s repository, unless the registry has it already:
    /// `HEAD` the blob, then a monolithic upload (`POST /v2/<repo>/blobs/uploads/`, then `PUT`
    /// the `Location` it answers with `digest=<sha256>`). Returns the blob's digest.
    ///
    /// The upload location must stay on the registry and repository (same scheme, host, port and
    /// `/v2/<repo>/blobs/uploads/` path), so the repository's credentials never travel elsewhere.
    ///
    /// # Limits
    /// `bytes` at most `max_blob_bytes`; response bodies are read only for error messages.
    ///
    /// # Errors
    /// [`RegistryError::TooLarge`] past the blob limit; [`RegistryError::ForeignLink`] for an
    /// upload location outside the repository; [`RegistryError::Malformed`] for a 202 without a
    /// usable `Location`; [`RegistryError::DigestMismatch`] when the registry names another
    /// digest; status, auth, transport and deadline errors as [`Self::manifest`].
    pub async fn push_blob(
        &self,
        image: &ImageRef,
        bytes: &[u8],
        deadline: &Deadline,
    ) -> Result<Digest, RegistryError> {
        let digest = Digest::sha256_of(bytes);
        let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        let start_url = self.url(image, "blobs/uploads/");
        if size > self.config.max_blob_bytes {
            return Err(RegistryError::TooLarge {
                what: format!("blob {digest} to upload"),
                url: start_url,
                max: self.config.max_blob_bytes,
                found: Some(size),
            });
        }
        if self.blob_exists(image, &digest, deadline).await? {
            return Ok(digest);
        }
        let what = format!("upload of blob {digest} to {}", image.name());
        let start = Outgoing {
            method: reqwest::Method::POST,
            url: start_url.clone(),
            accept: "*/*",
            body: None,
            push: true,
        };
        let reply = self.execute(image, &start, &what, 4096, deadline).await?;
        let location =
            header(&reply.headers, "location").ok_or_else(|| RegistryError::Malformed {
                what: what.clone(),
                url: start_url.clone(),
                detail: format!("answered {} without a Location header", reply.status),
            })?;
        let mut put_url = self.upload_location(image, &start_url, location, &what)?;
        put_url
            .query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let put = Outgoing {
            method: reqwest::Method::PUT,
            url: put_url.to_string(),
            accept: "*/*",
            body: Some(("application/octet-stream", bytes)),
            push: true,
        };
        let reply = self.execute(image, &put, &what, 4096, deadline).await?;
        if let Some(named) = header(&reply.headers, "docker-content-digest")
            && named != digest.to_string()
        {
            return Err(RegistryError::DigestMismatch {
                what,
                url: put.url,
                expected: digest.to_string(),
                computed: named.to_owned(),
            });
        }
        Ok(digest)
    }

    /// Stores a manifest (or index) under `reference` (a tag, or its own digest) in `image`'s
    /// repository: `PUT /v2/<repo>/manifests/<reference>` with `media_type` as `Content-Type`.
    ///
    /// # Limits
    /// `bytes` at most `max_manifest_bytes`.
    ///
    /// # Errors
    /// [`RegistryError::TooLarge`] past the manifest limit; [`RegistryError::DigestMismatch`]
    /// when the registry's `Docker-Content-Digest` is not the SHA-256 of `bytes`, or when
    /// `reference` is a digest that is not theirs; status, auth, transport and deadline errors as
    /// [`Self::manifest`].
    pub async fn push_manifest(
        &self,
        image: &ImageRef,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
        deadline: &Deadline,
    ) -> Result<PushedManifest, RegistryError> {
        let digest = Digest::sha256_of(bytes);
        let url = self.url(image, &format!("manifests/{reference}"));
        let what = format!("manifest {reference} of {}", image.name());
        let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if size > self.config.max_manifest_bytes {
            return Err(RegistryError::TooLarge {
                what,
                url,
                max: self.config.max_manifest_bytes,
                found: Some(size),
            });
        }
        if let Ok(named) = reference.parse::<Digest>()
            && named != digest
        {
            return Err(RegistryError::DigestMismatch {
                what,
                url,
                expected: named.to_string(),
                computed: digest.to_string(),
            });
        }
        let put = Outgoing {
            method: reqwest::Method::PUT,
            url: url.clone(),
            accept: "*/*",
            body: Some((media_type, bytes)),
            push: true,
        };
        let reply = self.execute(image, &put, &what, 4096, deadline).await?;
        if let Some(named) = header(&reply.headers, "docker-content-digest")
            && named != digest.to_string()
        {
            return Err(RegistryError::DigestMismatch {
                what,
                url,
                expected: digest.to_string(),
                computed: named.to_owned(),
            });
        }
        Ok(PushedManifest {
            digest,
            url,
            subject_indexed: header(&reply.headers, "oci-subject").is_some(),
        })
    }

    /// Resolves an upload `Location` against the upload URL and refuses one that leaves the
    /// registry or the repository's upload path.
    fn upload_location(
        &self,
        image: &ImageRef,
        start_url: &str,
        location: &str,
        what: &str,
    ) -> Result<reqwest::Url, RegistryError> {
        let base = reqwest::Url::parse(start_url)
            .map_err(|e| RegistryError::Config(format!("upload URL {start_url}: {e}")))?;
        let target = base.join(location).map_err(|e| RegistryError::Malformed {
            what: what.to_owned(),
            url: start_url.to_owned(),
            detail: format!("Location {location:?}: {e}"),
        })?;
        let prefix = format!("/v2/{}/blobs/uploads/", image.repository());
        let same_place = target.scheme() == base.scheme()
            && target.host_str() == base.host_str()
            && target.port_or_known_default() == base.port_or_known_default()
            && target.path().starts_with(&prefix)
            && !target.path().contains("/../")
            && target.username().is_empty()
            && target.password().is_none();
        if !same_place {
            return Err(RegistryError::ForeignLink {
                what: what.to_owned(),
                url: start_url.to_owned(),
                link: target.to_string(),
                expected: format!("{}://{}{prefix}…", base.scheme(), image.registry()),
            });
        }
        Ok(target)
    }

    fn scheme(&self, registry: &str) -> &'static str {
        if self
            .config
            .insecure_registries
            .iter()
            .any(|r| r == registry)
        {
            "http"
        } else {
            "https"
        }
    }

    fn url(&self, image: &ImageRef, path: &str) -> String {
        format!(
            "{}://{}/v2/{}/{path}",
            self.scheme(image.registry()),
            image.registry(),
            image.repository()
        )
    }

    fn check_allowed(&self, registry: &str) -> Result<(), RegistryError> {
        match &self.config.allowed_registries {
            Some(list) if !list.iter().any(|r| r == registry) => Err(RegistryError::NotAllowed {
                registry: registry.to_owned(),
                why: "it is not in the registry allow-list".into(),
            }),
            _ => Ok(()),
        }
    }

    /// GET with auth, bounded body, timeouts and retries. Non-2xx statuses become errors.
    async fn get(
        &self,
        image: &ImageRef,
        path: &str,
        accept: &str,
        what: &str,
        max: u64,
        deadline: &Deadline,
    ) -> Result<Reply, RegistryError> {
        let url = self.url(image, path);
        let request = Outgoing {
            method: reqwest::Method::GET,
            url,
            accept,
            body: None,
            push: false,
        };
        self.execute(image, &request, what, max, deadline).await
    }

    /// One request (any method) with auth, bounded body, timeouts and retries. Non-2xx statuses
    /// become errors.
    async fn execute(
        &self,
        image: &ImageRef,
        request: &Outgoing<'_>,
        what: &str,
        max: u64,
        deadline: &Deadline,
    ) -> Result<Reply, RegistryError> {
        self.check_allowed(image.registry())?;
        let url = request.url.clone();
        let accept = request.accept;
        let auth_key = format!("{}/{}", image.registry(), image.repository());
        let resolved = self.config.credentials.resolve(image.registry())?;
        if let Resolved::Bearer(token) = &resolved {
            self.set_auth(&auth_key, format!("Bearer {token}"));
        }
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| RegistryError::Config("client is shut down".into()))?;
        let mut attempts = 0u32;
        let mut authenticated = false;
        loop {
            attempts += 1;
            let auth = self.cached_auth(&auth_key);
            let outcome = self
                .send_once(request, accept, auth.as_deref(), what, max, deadline)
                .await;
            let transient = match outcome {
                Ok(reply) => match reply.status {
                    200..=299 => return Ok(reply),
                    401 if !authenticated => {
                        authenticated = true;
                        let challenge = header(&reply.headers, WWW_AUTHENTICATE.as_str())
                            .and_then(parse_challenge);
                        self.authenticate(
                            image,
                            &auth_key,
                            challenge,
                            &resolved,
                            request.push,
                            deadline,
                        )
                        .await?;
                        attempts -= 1; // the challenge round trip is not a failed attempt
                        continue;
                    }
                    401 => {
                        return Err(RegistryError::Unauthorized {
                            registry: image.registry().to_owned(),
                            detail: format!("401 for {url} with the credentials given"),
                        });
                    }
                    403 => return Err(RegistryError::Forbidden { url }),
                    404 => {
                        return Err(RegistryError::NotFound {
                            what: what.to_owned(),
                            url,
                        });
                    }
                    429 => RegistryError::RateLimited {
                        url: url.clone(),
                        attempts,
                        retry_after: header(&reply.headers, RETRY_AFTER.as_str())
                            .and_then(|v| v.trim().parse().ok()),
                    },
                    status => {
                        let e = RegistryError::Status {
                            url: url.clone(),
                            status,
                            attempts,
                            body: String::from_utf8_lossy(
                                reply.body.get(..200).unwrap_or(&reply.body),
                            )
                            .into_owned(),
                        };
                        if !(500..=599).contains(&status) {
                            return Err(e);
                        }
                        e
                    }
                },
                Err(e) if e.is_transient() => e,
                Err(e) => return Err(e),
            };
            if attempts > self.config.max_retries {
                return Err(with_attempts(transient, attempts));
            }
            let wait = match &transient {
                RegistryError::RateLimited {
                    retry_after: Some(s),
                    ..
                } => Duration::from_secs(*s),
                _ => Duration::from_millis(100u64.saturating_mul(1 << attempts.min(6))),
            }
            .min(self.config.max_retry_wait);
            let left = deadline.remaining(what)?;
            if wait >= left {
                // Waiting would overrun the deadline: report the failure that caused it.
                return Err(with_attempts(transient, attempts));
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// One request, under `min(request_timeout, time left)`, body read with the cap.
    async fn send_once(
        &self,
        outgoing: &Outgoing<'_>,
        accept: &str,
        auth: Option<&str>,
        what: &str,
        max: u64,
        deadline: &Deadline,
    ) -> Result<Reply, RegistryError> {
        let url = outgoing.url.as_str();
        let left = deadline.remaining(what)?;
        let timeout = self.config.request_timeout.min(left);
        let mut request = self
            .http
            .request(outgoing.method.clone(), url)
            .header(ACCEPT, accept);
        if let Some((content_type, body)) = outgoing.body {
            request = request
                .header(CONTENT_TYPE, content_type)
                .body(body.to_vec());
        } else if outgoing.method != reqwest::Method::GET
            && outgoing.method != reqwest::Method::HEAD
        {
            request = request.header(CONTENT_LENGTH, "0");
        }
        if let Some(a) = auth {
            request = request.header(AUTHORIZATION, a);
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        let exchange = async {
            let mut response = request
                .send()
                .await
                .map_err(|e| connection_error(url, &e))?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            // Error bodies are only read for the message: cap them small.
            let cap = if (200..300).contains(&status) {
                max
            } else {
                4096
            };
            // A HEAD answer announces the size of a body that never comes.
            let body = if outgoing.method == reqwest::Method::HEAD {
                Vec::new()
            } else {
                read_bounded(&mut response, cap, what, url, (200..300).contains(&status)).await?
            };
            Ok::<_, RegistryError>(Reply {
                status,
                headers,
                body,
            })
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) if timeout < self.config.request_timeout => Err(deadline.exceeded(what)),
            Err(_) => Err(RegistryError::Timeout {
                url: url.to_owned(),
                timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            }),
        }
    }

    /// Answers a 401 challenge: fetches a bearer token, or prepares basic auth.
    async fn authenticate(
        &self,
        image: &ImageRef,
        key: &str,
        challenge: Option<Challenge>,
        resolved: &Resolved,
        push: bool,
        deadline: &Deadline,
    ) -> Result<(), RegistryError> {
        let unauthorized = |detail: String| RegistryError::Unauthorized {
            registry: image.registry().to_owned(),
            detail,
        };
        match challenge {
            Some(Challenge::Basic) => {
                let header = resolved.basic_header().ok_or_else(|| {
                    unauthorized(
                        "the registry asks for basic credentials and none are configured".into(),
                    )
                })?;
                self.set_auth(key, header);
                Ok(())
            }
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => {
                let actions = if push { "pull,push" } else { "pull" };
                let scope =
                    scope.unwrap_or_else(|| format!("repository:{}:{actions}", image.repository()));
                let mut url = reqwest::Url::parse(&realm).map_err(|e| {
                    unauthorized(format!("token realm {realm:?} is not a URL: {e}"))
                })?;
                if url.scheme() != "https" && self.scheme(image.registry()) == "https" {
                    return Err(unauthorized(format!("token realm {realm} is not HTTPS")));
                }
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(s) = &service {
                        q.append_pair("service", s);
                    }
                    q.append_pair("scope", &scope);
                }
                let mut request = self.http.get(url.clone());
                match resolved {
                    Resolved::UserPassword(u, p) => request = request.basic_auth(u, Some(p)),
                    Resolved::IdentityToken(t) => {
                        let mut form = vec![
                            ("grant_type", "refresh_token"),
                            ("refresh_token", t.as_str()),
                            ("client_id", "custody"),
                            ("scope", scope.as_str()),
                        ];
                        if let Some(s) = &service {
                            form.push(("service", s.as_str()));
                        }
                        let body = form
                            .iter()
                            .map(|(k, v)| format!("{k}={}", url_encode(v)))
                            .collect::<Vec<_>>()
                            .join("&");
                        request = self
                            .http
                            .post(realm.as_str())
                            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                            .body(body);
                    }
                    Resolved::None | Resolved::Bearer(_) => {}
                }
                let left = deadline.remaining("fetching a registry token")?;
                self.requests.fetch_add(1, Ordering::Relaxed);
                let max = self.config.max_token_bytes;
                let token_url = url.to_string();
                let exchange = async {
                    let mut response = request
                        .send()
                        .await
                        .map_err(|e| connection_error(&token_url, &e))?;
                    let status = response.status().as_u16();
                    let body = read_bounded(&mut response, max, "token response", &token_url, true)
                        .await?;
                    Ok::<_, RegistryError>((status, body))
                };
                let (status, body) =
                    tokio::time::timeout(self.config.request_timeout.min(left), exchange)
                        .await
                        .map_err(|_| RegistryError::Timeout {
                            url: token_url.clone(),
                            timeout_ms: u64::try_from(
                                self.config.request_timeout.min(left).as_millis(),
                            )
                            .unwrap_or(u64::MAX),
                        })??;
                if !(200..300).contains(&status) {
                    return Err(unauthorized(format!(
                        "token endpoint {realm} answered {status}"
                    )));
                }
                #[derive(serde::Deserialize)]
                struct TokenReply {
                    token: Option<String>,
                    access_token: Option<String>,
                }
                let t: TokenReply = serde_json::from_slice(&body)
                    .map_err(|e| unauthorized(format!("token response is not JSON: {e}")))?;
                let token = t
                    .token
                    .or(t.access_token)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| unauthorized("token response has no token".into()))?;
                self.set_auth(key, format!("Bearer {token}"));
                Ok(())
            }
            None => Err(unauthorized(
                "401 without a usable WWW-Authenticate challenge".into(),
            )),
        }
    }

    fn cached_auth(&self, key: &str) -> Option<String> {
        self.auth.lock().ok().and_then(|m| m.get(key).cloned())
    }

    fn set_auth(&self, key: &str, value: String) {
        if let Ok(mut m) = self.auth.lock() {
            m.insert(key.to_owned(), value);
        }
    }
}

/// Why a tag list's next page cannot be followed.
#[derive(Debug, PartialEq, Eq)]
enum NextPageError {
    /// The `Link` header does not parse.
    Malformed(String),
    /// The link leaves the repository's tag list (the resolved target).
    Foreign(String),
}

/// The query of the tag list page to read after this one, or `None` when the list is complete.
///
/// `list` is `scheme://registry/v2/<repository>/tags/list`, `page` the URL just read (relative
/// links resolve against it). A `rel="next"` link wins and must resolve to `list`'s scheme,
/// host, port and path. Without one, a page of [`TAG_PAGE_SIZE`] or more tags that added a new
/// tag continues at `last=<its last tag>`; anything else ends the list.
fn next_tag_page(
    list: &reqwest::Url,
    page: &reqwest::Url,
    links: &[&str],
    page_tags: &[String],
    added: usize,
) -> Result<Option<String>, NextPageError> {
    let mut target = None;
    for value in links {
        if let Some(t) = next_link(value).map_err(NextPageError::Malformed)? {
            target = Some(t);
            break;
        }
    }
    let Some(target) = target else {
        return Ok(match page_tags.last() {
            Some(last) if page_tags.len() >= TAG_PAGE_SIZE && added > 0 => {
                Some(format!("n={TAG_PAGE_SIZE}&last={}", url_encode(last)))
            }
            _ => None,
        });
    };
    let url = page
        .join(target)
        .map_err(|e| NextPageError::Malformed(format!("next-page link <{target}>: {e}")))?;
    let same_place = url.scheme() == list.scheme()
        && url.host_str() == list.host_str()
        && url.port_or_known_default() == list.port_or_known_default()
        && url.path() == list.path()
        && url.username().is_empty()
        && url.password().is_none();
    if !same_place {
        return Err(NextPageError::Foreign(url.to_string()));
    }
    Ok(Some(url.query().unwrap_or_default().to_owned()))
}

/// The target of the first `rel="next"` link of one `Link` header value (RFC 8288:
/// `<uri>; param=value; …, <uri>; …`), or `None` when it has no such link.
fn next_link(value: &str) -> Result<Option<&str>, String> {
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return Ok(None);
        }
        let (target, after) = rest
            .strip_prefix('<')
            .and_then(|r| r.split_once('>'))
            .ok_or_else(|| format!("Link header {value:?} is not <uri>; rel=…"))?;
        // The parameters run to the next comma outside quotes.
        let mut quoted = false;
        let end = after
            .char_indices()
            .find(|&(_, c)| {
                if c == '"' {
                    quoted = !quoted;
                }
                c == ',' && !quoted
            })
            .map_or(after.len(), |(i, _)| i);
        let (params, next) = after.split_at(end);
        let is_next = params.split(';').any(|p| {
            p.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("rel")
                    && v.trim()
                        .trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
            })
        });
        if is_next {
            return Ok(Some(target.trim()));
        }
        rest = next;
    }
}

/// A distribution-spec tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn is_valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    bytes.len() <= 128
        && bytes
            .first()
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn with_attempts(e: RegistryError, n: u32) -> RegistryError {
    match e {
        RegistryError::Connection { url, detail, .. } => RegistryError::Connection {
            url,
            attempts: n,
            detail,
        },
        RegistryError::Status {
            url, status, body, ..
        } => RegistryError::Status {
            url,
            status,
            attempts: n,
            body,
        },
        RegistryError::RateLimited {
            url, retry_after, ..
        } => RegistryError::RateLimited {
            url,
            attempts: n,
            retry_after,
        },
        other => other,
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn connection_error(url: &str, e: &reqwest::Error) -> RegistryError {
    use std::error::Error as _;
    let mut detail = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        detail = format!("{detail}: {s}");
        source = s.source();
    }
    RegistryError::Connection {
        url: url.to_owned(),
        attempts: 1,
        detail,
    }
}

/// Reads a body up to `max` bytes: refuses early on a larger `Content-Length`, stops as soon as
/// more arrives, and reports a body shorter than its `Content-Length` as truncated.
async fn read_bounded(
    response: &mut reqwest::Response,
    max: u64,
    what: &str,
    url: &str,
    strict: bool,
) -> Result<Vec<u8>, RegistryError> {
    let announced = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = |found| RegistryError::TooLarge {
        what: what.to_owned(),
        url: url.to_owned(),
        max,
        found,
    };
    if let Some(n) = announced
        && n > max
    {
        if strict {
            return Err(too_large(Some(n)));
        }
        return Ok(Vec::new());
    }
    let mut body =
        Vec::with_capacity(usize::try_from(announced.unwrap_or(0).min(64 << 10)).unwrap_or(0));
    loop {
        let chunk = response
            .chunk()
            .await
            .map_err(|e| RegistryError::Truncated {
                what: what.to_owned(),
                url: url.to_owned(),
                detail: e.to_string(),
            })?;
        let Some(chunk) = chunk else { break };
        if u64::try_from(body.len() + chunk.len()).unwrap_or(u64::MAX) > max {
            if strict {
                return Err(too_large(announced));
            }
            break;
        }
        body.extend_from_slice(&chunk);
    }
    if let Some(n) = announced
        && strict
        && u64::try_from(body.len()).unwrap_or(u64::MAX) < n
    {
        return Err(RegistryError::Truncated {
            what: what.to_owned(),
            url: url.to_owned(),
            detail: format!("{} of {n} announced bytes arrived", body.len()),
        });
    }
    Ok(body)
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> reqwest::Url {
        reqwest::Url::parse(s).unwrap()
    }

    const LIST: &str = "https://r.example/v2/acme/app/tags/list";
    const PAGE: &str = "https://r.example/v2/acme/app/tags/list?n=1000";

    fn next(
        links: &[&str],
        tags: &[String],
        added: usize,
    ) -> Result<Option<String>, NextPageError> {
        next_tag_page(&url(LIST), &url(PAGE), links, tags, added)
    }

    #[test]
    fn next_link_finds_rel_next_among_links_and_params() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?n=2&last=b>; rel="next""#),
            Ok(Some("/v2/a/tags/list?n=2&last=b"))
        );
        assert_eq!(next_link("<x>; rel=next"), Ok(Some("x")));
        assert_eq!(
            next_link(r#"<p>; rel="prev", <n>; title="a, b"; rel="prefetch next""#),
            Ok(Some("n"))
        );
        assert_eq!(next_link(r#"<p>; REL="Next""#), Ok(Some("p")));
    }

    #[test]
    fn next_link_ignores_other_relations_and_rejects_garbage() {
        assert_eq!(next_link(r#"<p>; rel="prev""#), Ok(None));
        assert_eq!(next_link(r#"<p>; rel="nextpage""#), Ok(None));
        assert_eq!(next_link(r#"<p>; title="rel=next""#), Ok(None));
        assert_eq!(next_link(""), Ok(None));
        assert!(next_link(r#"/v2/a/tags/list; rel="next""#).is_err());
        assert!(next_link(r#"<unterminated; rel="next""#).is_err());
    }

    #[test]
    fn a_link_within_the_repository_is_followed_relative_or_absolute() {
        assert_eq!(
            next(
                &[r#"</v2/acme/app/tags/list?n=2&last=b>; rel="next""#],
                &[],
                0
            ),
            Ok(Some("n=2&last=b".into()))
        );
        assert_eq!(
            next(
                &[r#"<https://r.example:443/v2/acme/app/tags/list?last=c>; rel="next""#],
                &[],
                0
            ),
            Ok(Some("last=c".into()))
        );
        assert_eq!(
            next(&[r#"<list?last=d>; rel="next""#], &[], 0),
            Ok(Some("last=d".into()))
        );
    }

    #[test]
    fn a_link_leaving_the_registry_or_repository_is_refused() {
        for (link, found) in [
            (
                "<https://evil.example/v2/acme/app/tags/list?last=b>",
                "https://evil.example/",
            ),
            (
                "<//evil.example/v2/acme/app/tags/list>",
                "https://evil.example/",
            ),
            (
                "<http://r.example/v2/acme/app/tags/list?last=b>",
                "http://r.example/",
            ),
            (
                "<https://r.example:8443/v2/acme/app/tags/list>",
                "https://r.example:8443/",
            ),
            ("</v2/acme/other/tags/list?last=b>", "/v2/acme/other/"),
            ("</v2/acme/app/../other/tags/list>", "/v2/acme/other/"),
            ("</v2/acme/app/manifests/latest>", "/manifests/latest"),
            (
                "<https://user:pw@r.example/v2/acme/app/tags/list>",
                "user:pw@",
            ),
        ] {
            let header = format!(r#"{link}; rel="next""#);
            match next(&[&header], &[], 0) {
                Err(NextPageError::Foreign(u)) => assert!(u.contains(found), "{link}: {u}"),
                other => panic!("{link}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_full_page_without_a_link_continues_with_last_and_anything_else_ends() {
        let full: Vec<String> = (0..TAG_PAGE_SIZE).map(|i| format!("t{i:05}")).collect();
        assert_eq!(
            next(&[], &full, 1),
            Ok(Some(format!("n={TAG_PAGE_SIZE}&last=t00999")))
        );
        // A full page that added nothing new (a registry ignoring `last`) ends the list.
        assert_eq!(next(&[], &full, 0), Ok(None));
        let short = &full[..TAG_PAGE_SIZE - 1];
        assert_eq!(next(&[], short, short.len()), Ok(None));
        assert_eq!(next(&[], &[], 0), Ok(None));
        assert_eq!(next(&[r#"<p>; rel="prev""#], &[], 0), Ok(None));
    }

    #[test]
    fn an_upload_location_must_stay_in_the_repository() {
        let client = RegistryClient::new(RegistryConfig::default()).unwrap();
        let image: ImageRef = "r.example/acme/app".parse().unwrap();
        let start = "https://r.example/v2/acme/app/blobs/uploads/";
        for ok in [
            "/v2/acme/app/blobs/uploads/u1?_state=x",
            "https://r.example/v2/acme/app/blobs/uploads/u1",
            "u1",
        ] {
            let u = client.upload_location(&image, start, ok, "upload").unwrap();
            assert!(
                u.path().starts_with("/v2/acme/app/blobs/uploads/"),
                "{ok}: {u}"
            );
        }
        for bad in [
            "https://evil.example/v2/acme/app/blobs/uploads/u1",
            "http://r.example/v2/acme/app/blobs/uploads/u1",
            "/v2/acme/other/blobs/uploads/u1",
            "/v2/acme/app/blobs/uploads/../../../other/blobs/uploads/u1",
            "https://user:pw@r.example/v2/acme/app/blobs/uploads/u1",
        ] {
            assert!(
                matches!(
                    client.upload_location(&image, start, bad, "upload"),
                    Err(RegistryError::ForeignLink { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn tags_are_checked_against_the_distribution_grammar() {
        for ok in [
            "v1",
            "_x",
            "develop-v1.2.3-abc1234-1700000000",
            &"a".repeat(128),
        ] {
            assert!(is_valid_tag(ok), "{ok}");
        }
        for bad in ["", "-x", ".x", "a/b", "a:b", "a b", "ä", &"a".repeat(129)] {
            assert!(!is_valid_tag(bad), "{bad}");
        }
    }
}
