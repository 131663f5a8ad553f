//! The bound on every duration the emulator is configured with.

use std::time::Duration;

/// The longest duration any emulator setting accepts (7 days): longer ones
/// are refused by [`EmulatorBuilder::start`](crate::EmulatorBuilder::start)
/// rather than overflowing a deadline.
pub const MAX_CONFIGURED_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Why `value`, given to the setting `setter`, cannot work: past
/// [`MAX_CONFIGURED_DURATION`], or zero where zero cannot work.
pub(crate) fn duration_problem(setter: &str, value: Duration, zero_ok: bool) -> Option<String> {
    let too_small = value.is_zero() && !zero_ok;
    (too_small || value > MAX_CONFIGURED_DURATION).then(|| {
        let low = if zero_ok { "" } else { "more than 0 and " };
        format!(
            "{setter}({value:?}) is out of range: it must be {low}at most \
             {MAX_CONFIGURED_DURATION:?} (MAX_CONFIGURED_DURATION)"
        )
    })
}
