//! What the lifecycle tests need from the machine: QEMU, and the tiny test
//! guest built by scripts/build-test-guest.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// True when QEMU is installed. Without it the caller skips, loudly — unless
/// `MAQET_REQUIRE_QEMU=1` (as in CI), where a missing QEMU fails the test.
pub fn have_qemu(test: &str) -> bool {
    crate::harness::needs(
        test,
        "MAQET_REQUIRE_QEMU",
        crate::harness::runs("qemu-system-x86_64"),
        "qemu-system-x86_64 is not installed",
    )
}

/// The test guest's kernel and initramfs, built once per test run.
pub struct Guest {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
}

/// Printed by the guest once it can take commands and the power button.
pub const READY: &str = "MAQET-GUEST-READY";
/// Printed by the guest when the ACPI power button made it power off.
pub const POWEROFF: &str = "MAQET-GUEST-POWEROFF";

pub fn guest() -> &'static Guest {
    static GUEST: OnceLock<Guest> = OnceLock::new();
    GUEST.get_or_init(|| {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/build-test-guest");
        let out = Command::new(&script)
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "build-test-guest failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let value = |key: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .map(PathBuf::from)
                .unwrap_or_else(|| panic!("build-test-guest printed no {key}:\n{stdout}"))
        };
        Guest {
            kernel: value("MAQET_TEST_GUEST_KERNEL="),
            initrd: value("MAQET_TEST_GUEST_INITRD="),
        }
    })
}

/// A RON config that boots the test guest under TCG.
pub fn guest_config(name: &str) -> String {
    let g = guest();
    format!(
        "(\n    name: \"{name}\",\n    accel: Tcg,\n    memory: \"256M\",\n    boot: (\n        kernel: \"{}\",\n        initrd: \"{}\",\n        append: \"console=ttyS0 panic=-1\",\n    ),\n)\n",
        g.kernel.display(),
        g.initrd.display()
    )
}

/// The test guest with TCP `forwards` (host, guest) on a user network,
/// serving `listen`: each `PORT:TEXT` answers every connection to guest
/// port PORT with the line TEXT, or with nothing if TEXT is empty, and keeps
/// it open (`maqet.listen=` on the kernel command line, docs/test-guest.md).
pub fn listening_guest_config(name: &str, forwards: &[(u16, u16)], listen: &[&str]) -> String {
    let append: String = listen
        .iter()
        .map(|l| format!(" maqet.listen={l}"))
        .collect();
    let forwards: Vec<String> = forwards
        .iter()
        .map(|(host, guest)| format!("(host: {host}, guest: {guest})"))
        .collect();
    guest_config(name)
        .replacen("panic=-1\"", &format!("panic=-1{append}\""), 1)
        .replacen(
            "    memory:",
            &format!(
                "    network: [User(name: \"net0\", forwards: [{}])],\n    memory:",
                forwards.join(", ")
            ),
            1,
        )
}

/// A diskless VM with no kernel: SeaBIOS finds nothing to boot and ignores
/// the ACPI power button — the guest that never shuts down.
pub fn bios_config(name: &str) -> String {
    format!("(name: \"{name}\", accel: Tcg, memory: \"64M\")\n")
}
