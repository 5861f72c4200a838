//! The bearer-token check every RPC passes when a token is configured.

use tonic::{Request, Status};

/// A tonic interceptor that requires `authorization: Bearer <token>`.
#[derive(Debug, Clone)]
pub struct BearerAuth {
    expected: Option<Vec<u8>>,
}

impl BearerAuth {
    /// Checks for `token`; `None` lets every call through.
    pub fn new(token: Option<String>) -> Self {
        BearerAuth { expected: token.map(|t| format!("Bearer {t}").into_bytes()) }
    }

    /// The interceptor function.
    pub fn check(&self, req: Request<()>) -> Result<Request<()>, Status> {
        let Some(expected) = &self.expected else { return Ok(req) };
        match req.metadata().get("authorization") {
            Some(v) if constant_time_eq(v.as_bytes(), expected) => Ok(req),
            Some(_) => Err(Status::unauthenticated("authorization: the bearer token is wrong")),
            None => Err(Status::unauthenticated(
                "authorization: missing; this coordinator needs `authorization: Bearer <token>` (agentmill --token or AGENTMILL_TOKEN)",
            )),
        }
    }
}

impl tonic::service::Interceptor for BearerAuth {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        self.check(req)
    }
}

/// Compares without an early exit, so the time taken says nothing about where a guess differs.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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

    #[test]
    fn only_the_right_token_passes() {
        let auth = BearerAuth::new(Some("s3cret".into()));
        assert!(auth.check(req(Some("Bearer s3cret"))).is_ok());
        assert_eq!(auth.check(req(Some("Bearer nope"))).expect_err("wrong token").code(), tonic::Code::Unauthenticated);
        assert_eq!(auth.check(req(None)).expect_err("no token").code(), tonic::Code::Unauthenticated);
        assert!(BearerAuth::new(None).check(req(None)).is_ok());
    }
}
