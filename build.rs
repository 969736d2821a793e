//! Names the commit and the build date in `satellite --version`.

use std::process::Command;

fn main() {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let commit = std::env::var("SATELLITE_COMMIT")
        .ok()
        .or_else(|| {
            git(&["rev-parse", "--short=12", "HEAD"]).map(|c| {
                let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some();
                if dirty {
                    format!("{c}-modified")
                } else {
                    c
                }
            })
        })
        .unwrap_or_else(|| "unknown commit".into());
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "unknown date".into());
    println!("cargo:rustc-env=SATELLITE_BUILD=commit {commit}, built {date}");
    println!("cargo:rerun-if-env-changed=SATELLITE_COMMIT");
    // A new commit (or checkout) changes HEAD or the ref it points to.
    for path in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
