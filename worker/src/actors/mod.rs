//! The worker's actors (actix). Each actor is a struct in its own file with its messages beside
//! it, a bounded mailbox, and an observable state. The messages both job actors ([`episode`],
//! [`synth`]) send their supervisor are in [`job`].
//!
//! actix and tokio: the worker runs one actix `System` on a multi-threaded tokio runtime
//! (`actix_rt::System::with_tokio_rt`). Actors live on the system's arbiter thread and never
//! block it: their I/O (bollard, tonic, redis — all tokio-based) runs as futures, either inside
//! the actor (`ctx.spawn(fut.into_actor(self))`, for work that must see the actor's state when it
//! completes) or on the runtime's worker threads (`tokio::spawn`, for whole episodes), reporting
//! back with messages.

pub mod episode;
pub mod job;
pub mod publisher;
pub mod supervisor;
pub mod synth;
