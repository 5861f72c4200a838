//! Messages of `agentmill.v1` as canonical proto3 JSON (the mapping grpcurl and every gRPC JSON
//! gateway use), for the CLI's `--json` output and the coordinator's `/api/stats`.

use prost_reflect::{DescriptorPool, DynamicMessage};

use crate::v1;

/// Why a message could not be written as JSON.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// The embedded descriptors do not decode (a build defect).
    #[error("decoding the agentmill.v1 descriptors: {0}")]
    Descriptors(#[from] prost_reflect::DescriptorError),
    /// No descriptor has the message's name.
    #[error("no descriptor for {0}")]
    Unknown(&'static str),
    /// The message does not decode as its descriptor says.
    #[error("re-reading the message: {0}")]
    Decode(#[from] prost::DecodeError),
    /// serde_json refused it.
    #[error("writing JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The descriptors of `agentmill.v1`.
fn pool() -> Result<DescriptorPool, JsonError> {
    Ok(DescriptorPool::decode(crate::FILE_DESCRIPTOR_SET)?)
}

/// The full protobuf name of the messages printed as JSON.
pub trait ProtoName {
    /// e.g. `agentmill.v1.TaskStatus`.
    const FULL_NAME: &'static str;
}

macro_rules! proto_names {
    ($($t:ident),*) => { $(impl ProtoName for v1::$t { const FULL_NAME: &'static str = concat!("agentmill.v1.", stringify!($t)); })* };
}
proto_names!(TaskStatus, TaskEvent, ClusterStatsResponse, CancelTasksResponse, RetryTasksResponse, CordonWorkersResponse, SubmitTasksResponse, ListTasksResponse);

/// A message as canonical proto3 JSON.
pub fn to_json<M: prost::Message + ProtoName>(msg: &M) -> Result<serde_json::Value, JsonError> {
    let pool = pool()?;
    let desc = pool.get_message_by_name(M::FULL_NAME).ok_or(JsonError::Unknown(M::FULL_NAME))?;
    let dynamic = DynamicMessage::decode(desc, msg.encode_to_vec().as_slice())?;
    Ok(serde_json::to_value(&dynamic)?)
}
