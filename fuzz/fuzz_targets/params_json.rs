//! Raw bytes → params file. Must never panic; whatever is accepted must serialise back to the
//! reference format and parse again to the same params.
#![no_main]

use libfuzzer_sys::fuzz_target;
use staking_core::params::{BlockHeight, GlobalParams};

fuzz_target!(|data: &[u8]| {
    let Ok((params, _warnings)) = GlobalParams::from_json_bytes(data) else {
        return;
    };
    let json = params.to_json().to_string();
    let (again, _) = GlobalParams::from_json(&json).expect("serialised params parse again");
    assert_eq!(again, params);
    for v in params.versions() {
        assert_eq!(
            params.for_height(v.activation_height).map(|x| x.version),
            Some(v.version)
        );
    }
    let _ = params.for_height(BlockHeight(u64::MAX));
});
