//! Method configs from inline YAML, through the registry as the CLI builds them: the error a bad
//! config gives, or the label a good one gets.

use qbench_methods::method::config::RawMethodConfig;
use qbench_methods::method::registry;

/// The registry's error for `yaml`; panics if the config is accepted.
pub fn error_of(yaml: &str) -> String {
    let raw = RawMethodConfig::from_yaml(yaml, "test.yaml").expect("parses");
    match registry::parse(&raw) {
        Ok(_) => panic!("{yaml} was accepted"),
        Err(e) => e.to_string(),
    }
}

/// The label of the method `yaml` builds; panics if the config is rejected.
pub fn label_of(yaml: &str) -> String {
    let raw = RawMethodConfig::from_yaml(yaml, "test.yaml").expect("parses");
    match registry::parse(&raw) {
        Ok(m) => m.method().label(),
        Err(e) => panic!("{yaml} was rejected: {e}"),
    }
}
