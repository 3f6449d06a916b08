//! Builds the eBPF socket filter of the `ebpf` feature (on by default on Linux): clang
//! compiles `src/bpf/shed.bpf.c` and libbpf-cargo generates its Rust skeleton into OUT_DIR.
//! Without the feature (`cargo install --no-default-features`) nothing is built here.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "ebpf")]
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        ebpf::build();
    }
}

#[cfg(feature = "ebpf")]
mod ebpf {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    const SOURCE: &str = "src/bpf/shed.bpf.c";

    fn fail(what: &str) -> ! {
        panic!(
            "\n\nkascope's eBPF capture path (cargo feature 'ebpf', on by default) cannot be \
             built: {what}.\nInstall clang and the libbpf headers (Debian: apt-get install clang \
             libbpf-dev libelf-dev zlib1g-dev), or build without it: cargo install \
             --no-default-features (live capture then goes through libpcap only).\n\n"
        )
    }

    pub fn build() {
        println!("cargo:rerun-if-changed={SOURCE}");
        if Command::new("clang").arg("--version").output().is_err() {
            fail("clang was not found");
        }
        let headers = ["/usr/include/bpf/bpf_helpers.h", "/usr/include/linux/bpf.h"];
        if let Some(missing) = headers.iter().find(|h| !Path::new(h).exists()) {
            fail(&format!("{missing} is missing"));
        }
        let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
        // clang -target bpf does not search the multiarch include directory that holds
        // <asm/types.h>, which <linux/bpf.h> needs.
        let mut args = vec!["-O2".to_string(), "-Wall".to_string()];
        let multiarch = Command::new("cc")
            .arg("-print-multiarch")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|s| !s.is_empty());
        if let Some(dir) = multiarch.map(|m| format!("/usr/include/{m}"))
            && Path::new(&dir).exists()
        {
            args.push(format!("-I{dir}"));
        }
        libbpf_cargo::SkeletonBuilder::new()
            .source(SOURCE)
            .clang_args(args)
            .build_and_generate(out.join("shed.skel.rs"))
            .unwrap_or_else(|err| fail(&format!("compiling {SOURCE}: {err:#}")));
    }
}
