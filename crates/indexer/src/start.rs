//! Start-height rules (`docs/rules.md#start-height`, reference `ValidateStartHeight` /
//! `GetStartHeight`).

/// The first height to process, or why the requested one is refused.
pub fn start_height(
    requested: Option<u32>,
    last_processed: Option<u32>,
    first_activation: u32,
) -> Result<u32, String> {
    match (requested, last_processed) {
        (None, None) => Ok(first_activation),
        (None, Some(last)) => Ok(last.saturating_add(1)),
        (Some(h), None) if h == first_activation => Ok(h),
        (Some(h), None) => Err(format!(
            "the database is empty, so the start height must be the first params version's \
             activation height {first_activation}, not {h} (omit start_height to use it)"
        )),
        (Some(h), Some(last)) => {
            let max = last.saturating_add(1);
            if h < first_activation {
                Err(format!(
                    "start height {h} is below the first params version's activation height \
                     {first_activation}"
                ))
            } else if h > max {
                Err(format!(
                    "start height {h} is above the last processed height {last} + 1 = {max}: \
                     blocks in between would be skipped"
                ))
            } else {
                Ok(h)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_empty_database_starts_at_the_first_activation_height() {
        assert_eq!(start_height(None, None, 100), Ok(100));
        assert_eq!(start_height(Some(100), None, 100), Ok(100));
        assert!(start_height(Some(101), None, 100).is_err());
        assert!(start_height(Some(99), None, 100).is_err());
    }

    #[test]
    fn a_used_database_resumes_after_the_last_processed_height() {
        assert_eq!(start_height(None, Some(150), 100), Ok(151));
    }

    #[test]
    fn a_requested_height_must_lie_between_activation_and_the_next_block() {
        assert_eq!(start_height(Some(100), Some(150), 100), Ok(100));
        assert_eq!(start_height(Some(151), Some(150), 100), Ok(151));
        assert!(start_height(Some(152), Some(150), 100).is_err());
        assert!(start_height(Some(99), Some(150), 100).is_err());
    }

    proptest! {
        #[test]
        fn an_accepted_start_never_skips_a_block_nor_precedes_activation(
            req in proptest::option::of(0u32..1000),
            last in proptest::option::of(0u32..1000),
            act in 1u32..1000,
        ) {
            if let Ok(h) = start_height(req, last, act) {
                prop_assert!(h >= act.min(last.map_or(act, |l| l + 1)));
                if let Some(l) = last { prop_assert!(h <= l + 1); }
                if last.is_none() { prop_assert_eq!(h, act); }
            }
        }
    }
}
