//! Who may call what: credentials with roles.
//!
//! Every RPC carries `authorization: Bearer <token>`. The interceptor ([`Auth`]) finds the
//! credential the token belongs to (by the token's SHA-256, so the lookup's timing says nothing
//! about the token) and puts its [`Identity`] in the request's extensions. Each RPC then checks
//! the caller's role once, at the start of the call ([`require`]); `Attach` checks it once per
//! session and, at registration, that the credential is bound to the worker id it registers as.
//! Messages on an open session are not checked again: the session is the credential's.
//!
//! | role | may call |
//! |---|---|
//! | `client` | SubmitTasks, GetTask, ListTasks, CancelTasks, RetryTasks, WatchEvents, ClusterStats, GetTrajectory, PutContent |
//! | `worker` | Attach (as the worker ids its credential names), GetContent |
//! | `operator` | everything, CordonWorkers included; Attach as any worker id |
//!
//! The single `token` of older configurations is an operator credential named `token`. With no
//! token and no credential the coordinator is open: every caller is an operator.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tonic::{Request, Status};

/// What a credential may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Submits and watches work.
    Client,
    /// Runs episodes: attaches as its own worker ids, reads content.
    Worker,
    /// Everything.
    Operator,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Client => "client",
            Role::Worker => "worker",
            Role::Operator => "operator",
        })
    }
}

/// One `[[credentials]]` entry of the coordinator's configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CredentialConfig {
    /// A name for logs and errors (never the token); default `<role>-<n>`.
    pub name: String,
    /// `client`, `worker` or `operator`.
    pub role: Option<Role>,
    /// The token itself (prefer `token_file` or `token_env`: a config file is often readable).
    pub token: Option<String>,
    /// A file holding the token (surrounding whitespace is ignored).
    pub token_file: Option<PathBuf>,
    /// An environment variable holding the token.
    pub token_env: Option<String>,
    /// Worker credentials: the worker ids it may attach as (`w-7`, or a prefix like `gpu-*`).
    pub worker_ids: Vec<String>,
}

impl CredentialConfig {
    /// The name used in logs and errors.
    pub fn display_name(&self, index: usize) -> String {
        if self.name.is_empty() { format!("{}-{}", self.role.map(|r| r.to_string()).unwrap_or_else(|| "credential".into()), index + 1) } else { self.name.clone() }
    }

    /// Checks what can be checked without reading files or the environment.
    pub fn validate(&self, index: usize) -> Result<(), String> {
        let name = self.display_name(index);
        let Some(role) = self.role else {
            return Err(format!("credentials[{index}] ({name}): role is missing; set role = \"client\", \"worker\" or \"operator\""));
        };
        let sources = [self.token.is_some(), self.token_file.is_some(), self.token_env.is_some()].iter().filter(|s| **s).count();
        if sources != 1 {
            return Err(format!("credentials[{index}] ({name}): set exactly one of token, token_file, token_env (it has {sources})"));
        }
        match role {
            Role::Worker if self.worker_ids.is_empty() => Err(format!(
                "credentials[{index}] ({name}): a worker credential names the worker ids it may attach as: worker_ids = [\"w-1\"] (or a prefix, \"gpu-*\")"
            )),
            Role::Client | Role::Operator if !self.worker_ids.is_empty() => {
                Err(format!("credentials[{index}] ({name}): worker_ids is for role = \"worker\" (an operator may attach as any id; a client may not attach)"))
            }
            _ if self.worker_ids.iter().any(|w| w.is_empty() || w == "*") => {
                Err(format!("credentials[{index}] ({name}): worker_ids: an empty id or a bare \"*\" would bind the credential to every worker; name them"))
            }
            _ => Ok(()),
        }
    }

    /// The token, read from wherever it is kept.
    fn resolve(&self, index: usize) -> Result<String, String> {
        let name = self.display_name(index);
        let token = if let Some(t) = &self.token {
            t.clone()
        } else if let Some(path) = &self.token_file {
            std::fs::read_to_string(path).map_err(|e| format!("credentials[{index}] ({name}): token_file {}: {e}", path.display()))?.trim().to_string()
        } else if let Some(var) = &self.token_env {
            std::env::var(var).map_err(|_| format!("credentials[{index}] ({name}): token_env: the variable {var} is not set (or not UTF-8)"))?.trim().to_string()
        } else {
            return Err(format!("credentials[{index}] ({name}): no token"));
        };
        if token.is_empty() {
            return Err(format!("credentials[{index}] ({name}): the token is empty"));
        }
        if token.chars().any(|c| !c.is_ascii_graphic()) {
            return Err(format!("credentials[{index}] ({name}): the token must be printable ASCII without spaces (it travels in an HTTP header)"));
        }
        Ok(token)
    }
}

/// The caller of an RPC: the credential its token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The credential's name (never the token).
    pub name: Arc<str>,
    /// Its role.
    pub role: Role,
    /// For a worker credential, the ids it may attach as (exact, or a prefix ending in `*`).
    pub worker_ids: Vec<String>,
}

impl Identity {
    /// Everyone, on a coordinator without credentials.
    pub fn open() -> Identity {
        Identity { name: Arc::from("open"), role: Role::Operator, worker_ids: Vec::new() }
    }

    /// Whether this credential may register as `worker_id`.
    pub fn may_attach_as(&self, worker_id: &str) -> bool {
        match self.role {
            Role::Operator => true,
            Role::Client => false,
            Role::Worker => self.worker_ids.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => worker_id.starts_with(prefix),
                None => p == worker_id,
            }),
        }
    }
}

/// Checks that the caller of `rpc` has one of `roles` (an operator always does); answers its
/// identity. A request that did not pass the interceptor (an in-process service) is an operator's.
pub fn require<T>(req: &Request<T>, rpc: &str, roles: &[Role]) -> Result<Arc<Identity>, Status> {
    let id = req.extensions().get::<Arc<Identity>>().cloned().unwrap_or_else(|| Arc::new(Identity::open()));
    if id.role == Role::Operator || roles.contains(&id.role) {
        return Ok(id);
    }
    let needed: Vec<String> = roles.iter().map(Role::to_string).chain(["operator".to_string()]).collect();
    Err(Status::permission_denied(format!(
        "{rpc} needs role {}; the credential {:?} has role {} (ask the operator for a {} credential)",
        needed.join(" or "),
        id.name,
        id.role,
        roles.first().copied().unwrap_or(Role::Operator)
    )))
}

/// The interceptor: authenticates the bearer token and attaches the caller's [`Identity`].
#[derive(Debug, Clone)]
pub struct Auth {
    /// SHA-256 of each token → its credential; empty = open.
    by_digest: Arc<HashMap<[u8; 32], Arc<Identity>>>,
    open: Arc<Identity>,
}

impl Auth {
    /// Builds the credential table from the legacy `token` (an operator credential) and the
    /// `[[credentials]]` entries, reading token files and variables.
    pub fn from_config(token: Option<&str>, credentials: &[CredentialConfig]) -> Result<Auth, String> {
        let mut by_digest = HashMap::new();
        let mut add = |token: &str, identity: Identity| -> Result<(), String> {
            let name = identity.name.clone();
            if let Some(other) = by_digest.insert(digest(token), Arc::new(identity)) {
                return Err(format!("credentials: {name} and {} have the same token; give each its own", other.name));
            }
            Ok(())
        };
        if let Some(t) = token {
            add(t, Identity { name: Arc::from("token"), role: Role::Operator, worker_ids: Vec::new() })?;
        }
        for (i, c) in credentials.iter().enumerate() {
            c.validate(i)?;
            let token = c.resolve(i)?;
            let role = c.role.unwrap_or(Role::Client);
            add(&token, Identity { name: Arc::from(c.display_name(i).as_str()), role, worker_ids: c.worker_ids.clone() })?;
        }
        Ok(Auth { by_digest: Arc::new(by_digest), open: Arc::new(Identity::open()) })
    }

    /// A coordinator open to every caller (each one an operator).
    pub fn open() -> Auth {
        Auth { by_digest: Arc::default(), open: Arc::new(Identity::open()) }
    }

    /// Whether any credential is configured.
    pub fn is_open(&self) -> bool {
        self.by_digest.is_empty()
    }

    /// The interceptor function.
    pub fn check(&self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if self.by_digest.is_empty() {
            req.extensions_mut().insert(self.open.clone());
            return Ok(req);
        }
        let Some(value) = req.metadata().get("authorization") else {
            return Err(Status::unauthenticated(
                "authorization: missing; this coordinator needs `authorization: Bearer <token>` (agentmill --token or AGENTMILL_TOKEN)",
            ));
        };
        let token = value.as_bytes().strip_prefix(b"Bearer ").unwrap_or_default();
        match self.by_digest.get(&digest_bytes(token)) {
            Some(id) if !token.is_empty() => {
                let id = id.clone();
                req.extensions_mut().insert(id);
                Ok(req)
            }
            _ => Err(Status::unauthenticated("authorization: the bearer token is wrong")),
        }
    }
}

impl tonic::service::Interceptor for Auth {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        self.check(req)
    }
}

fn digest(token: &str) -> [u8; 32] {
    digest_bytes(token.as_bytes())
}

/// Tokens are looked up by their SHA-256: comparing digests (in whatever time) tells a guesser
/// nothing about which bytes of a token it got right.
fn digest_bytes(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(auth: Option<&str>) -> Request<()> {
        let mut r = Request::new(());
        if let Some(a) = auth {
            r.metadata_mut().insert("authorization", a.parse().expect("ascii"));
        }
        r
    }

    fn cred(role: Role, token: &str, ids: &[&str]) -> CredentialConfig {
        CredentialConfig { role: Some(role), token: Some(token.into()), worker_ids: ids.iter().map(|s| s.to_string()).collect(), ..Default::default() }
    }

    #[test]
    fn only_the_right_token_passes() {
        let auth = Auth::from_config(Some("s3cret"), &[]).expect("auth");
        let ok = auth.check(req(Some("Bearer s3cret"))).expect("right token");
        assert_eq!(ok.extensions().get::<Arc<Identity>>().map(|i| i.role), Some(Role::Operator), "the legacy token is an operator's");
        assert_eq!(auth.check(req(Some("Bearer nope"))).expect_err("wrong token").code(), tonic::Code::Unauthenticated);
        assert_eq!(auth.check(req(Some("s3cret"))).expect_err("no Bearer").code(), tonic::Code::Unauthenticated);
        assert_eq!(auth.check(req(Some("Bearer "))).expect_err("empty").code(), tonic::Code::Unauthenticated);
        assert_eq!(auth.check(req(None)).expect_err("no token").code(), tonic::Code::Unauthenticated);
        assert!(Auth::open().check(req(None)).is_ok());
    }

    #[test]
    fn each_token_carries_its_role_and_the_role_decides() {
        let auth = Auth::from_config(None, &[cred(Role::Client, "c", &[]), cred(Role::Worker, "w", &["w-1", "gpu-*"]), cred(Role::Operator, "o", &[])]).expect("auth");
        let as_role = |t: &str| auth.check(req(Some(&format!("Bearer {t}")))).expect("known token");
        let client = as_role("c");
        assert!(require(&client, "SubmitTasks", &[Role::Client]).is_ok());
        let denied = require(&client, "CordonWorkers", &[]).expect_err("a client cannot cordon");
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        assert!(denied.message().contains("needs role operator") && denied.message().contains("client-1"), "{}", denied.message());
        let worker = as_role("w");
        let denied = require(&worker, "SubmitTasks", &[Role::Client]).expect_err("a worker cannot submit");
        assert!(denied.message().contains("needs role client or operator"), "{}", denied.message());
        let id = require(&worker, "Attach", &[Role::Worker]).expect("a worker attaches");
        assert!(id.may_attach_as("w-1") && id.may_attach_as("gpu-7"));
        assert!(!id.may_attach_as("w-2") && !id.may_attach_as("w-10"));
        assert!(require(&as_role("o"), "CordonWorkers", &[]).is_ok());
    }

    #[test]
    fn bad_credentials_are_refused_with_the_fix() {
        let err = |c: CredentialConfig| Auth::from_config(None, &[c]).expect_err("refused");
        assert!(err(cred(Role::Worker, "w", &[])).contains("worker_ids"));
        assert!(err(CredentialConfig { role: None, ..cred(Role::Client, "c", &[]) }).contains("role is missing"));
        assert!(err(CredentialConfig { token: None, ..cred(Role::Client, "c", &[]) }).contains("exactly one of token"));
        assert!(err(CredentialConfig { token_env: Some("AGENTMILL_TEST_SURELY_UNSET_VAR".into()), token: None, ..cred(Role::Client, "c", &[]) }).contains("is not set"));
        assert!(err(cred(Role::Worker, "w", &["*"])).contains("every worker"));
        let dup = Auth::from_config(Some("same"), &[cred(Role::Client, "same", &[])]).expect_err("duplicate");
        assert!(dup.contains("same token"), "{dup}");
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("w.token");
        std::fs::write(&file, "from-a-file\n").expect("write");
        let auth = Auth::from_config(None, &[CredentialConfig { token: None, token_file: Some(file), ..cred(Role::Worker, "", &["w-1"]) }]).expect("auth");
        assert!(auth.check(req(Some("Bearer from-a-file"))).is_ok(), "the file's token, without its newline");
    }
}
