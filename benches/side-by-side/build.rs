//! Reads the resolved versions of the systems under test from Cargo.lock, so every JSON line can
//! name them (`SBS_VERSION_<CRATE>` environment variables for `env!`).

fn main() {
    println!("cargo:rerun-if-changed=Cargo.lock");
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let mut versions = std::collections::HashMap::new();
    let mut name: Option<String> = None;
    for line in lock.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = Some(n.trim_matches('"').to_string());
        } else if let (Some(v), Some(n)) = (line.strip_prefix("version = "), name.take()) {
            versions.entry(n).or_insert_with(|| v.trim_matches('"').to_string());
        }
    }
    for krate in ["sqlx", "graphile_worker", "apalis", "apalis-postgres", "jobsmith"] {
        let v = versions.get(krate).map_or("unknown", String::as_str);
        let var = krate.to_uppercase().replace('-', "_");
        println!("cargo:rustc-env=SBS_VERSION_{var}={v}");
    }
}
