//! Compiles `proto/agentmill/v1/*.proto` with tonic/prost and writes the file descriptor set
//! that the coordinator serves through gRPC reflection.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    println!("cargo:rerun-if-changed=proto");
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("agentmill_v1_descriptor.bin"))
        .compile_protos(&["proto/agentmill/v1/coordinator.proto"], &["proto"])?;
    Ok(())
}
