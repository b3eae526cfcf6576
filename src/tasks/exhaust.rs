//! The op of an `exhaust_memory` fault: the page allocates memory, 16 MiB at a time and every
//! page of it written (so it is resident, not just reserved), until an allocation fails, and
//! answers `resource_exhaustion` saying how much it held and what failed.
//!
//! What makes the allocation fail is a real limit of the renderer: before the op, stressctl lowers
//! the data-segment limit of the session's renderer processes to what each holds plus the fault's
//! `limit_mb` ([`crate::browser::process::limit_renderers_data`]), so the renderer's allocator
//! is refused by the kernel (an `ArrayBuffer` allocation then throws, or the renderer dies). The
//! page never holds more than its ceiling ([`ceiling_mb`]), so where no limit can be set (a
//! remote or Grid browser) the fault still cannot take the host down; the answer then says that
//! the ceiling, not the renderer, ended it.

use super::{parse_result, OpOk};
use crate::recovery::{classify_cmd_error, FailureClass, OpError};
use serde_json::json;

/// The most the page holds (MiB) for a fault of `limit_mb`: a quarter more (at least 64 MiB),
/// so that the renderer's limit, not the ceiling, is what ends the allocation when it is set.
pub fn ceiling_mb(limit_mb: u32) -> u32 {
    limit_mb + (limit_mb / 4).max(64)
}

/// The page's allocation loop; argument 0 is the ceiling in MiB. What it held is dropped before
/// it answers, so a renderer that survives is usable again.
const SCRIPT: &str = r#"const done = arguments[arguments.length - 1];
const ceiling = arguments[0], CHUNK = 16;
let hold = [], mb = 0, why = null;
try { while (mb < ceiling) { const a = new Uint8Array(CHUNK << 20); a.fill(1); hold.push(a); mb += CHUNK; } }
catch (e) { why = (e && e.name) ? e.name + ': ' + e.message : String(e); }
hold = null;
done(why === null
  ? {ok: false, class: 'resource_exhaustion', message: 'exhaust_memory: the page held ' + mb +
     ' MiB, the ceiling of the fault, without an allocation failing (no renderer limit was in force)'}
  : {ok: false, class: 'resource_exhaustion', message: 'out of memory: an allocation failed after the page held ' + mb +
     ' MiB (' + why + ')'});"#;

/// Runs the allocation in the session's page. A renderer that dies of it (the driver answers
/// with a crash) is a resource exhaustion too: this op is what exhausted it.
pub async fn run(client: &fantoccini::Client, limit_mb: u32) -> Result<OpOk, OpError> {
    match client.execute_async(SCRIPT, vec![json!(ceiling_mb(limit_mb))]).await {
        Ok(v) => parse_result(v),
        Err(e) => {
            let e = classify_cmd_error(e);
            if e.class == FailureClass::Crash {
                let message = format!("the renderer died while the page allocated under exhaust_memory ({})", e.message);
                return Err(OpError::new(FailureClass::ResourceExhaustion, message));
            }
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_leaves_the_renderer_limit_room_to_act_first() {
        assert_eq!(ceiling_mb(256), 320);
        assert_eq!(ceiling_mb(16), 80);
        assert_eq!(ceiling_mb(4096), 5120);
    }
}
