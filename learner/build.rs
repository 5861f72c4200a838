//! Links the learner's binaries against the libtorch that torch-sys found, with an rpath so they
//! run without LD_LIBRARY_PATH.
//!
//! With a CUDA build of libtorch, `libtorch_cuda.so` is linked with `--no-as-needed`: nothing in
//! the binary references its symbols directly (kernels register themselves at load time), so
//! `--as-needed` would drop it and `tch::Cuda::is_available()` would say false on a GPU host.
//! Set `AGENTMILL_CPU_ONLY=1` to build a binary that never loads the CUDA libraries.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=AGENTMILL_CPU_ONLY");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    let cpu_only = std::env::var("AGENTMILL_CPU_ONLY").is_ok_and(|v| v == "1");
    if !cpu_only && std::path::Path::new(&lib).join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
