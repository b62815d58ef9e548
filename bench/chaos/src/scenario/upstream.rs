//! One of a workload's two primary upstreams misbehaving at the TCP/HTTP level while the other
//! is fine: the proxy alone must keep every idempotent request whole.

use std::time::{Duration, Instant};

use umbra_e2e::ProxyProcess;
use umbra_e2e::fault::{Fault, FaultyUpstream};
use umbra_e2e::http::eventually;

use super::{AFTER, BEFORE, Options, secs, settle};
use crate::load::Load;
use crate::record::Recorder;
use crate::stack::{PROXY_TABLES, get_json};
use crate::summary::Run;

/// How long the upstream stays broken.
const FAULT: Duration = Duration::from_secs(15);

/// `p2` refuses connections.
pub async fn refuse(o: Options) -> anyhow::Result<Run> {
    broken(o, Fault::Refuse).await
}

/// `p2` accepts and never answers.
pub async fn black_hole(o: Options) -> anyhow::Result<Run> {
    broken(o, Fault::BlackHole).await
}

/// `p2` resets after half a response head.
pub async fn reset_in_head(o: Options) -> anyhow::Result<Run> {
    broken(o, Fault::ResetInHead).await
}

/// `p2` resets after the head and part of the body.
pub async fn reset_in_body(o: Options) -> anyhow::Result<Run> {
    broken(o, Fault::ResetInBody).await
}

async fn broken(o: Options, fault: Fault) -> anyhow::Result<Run> {
    let (p1, p2) = (
        FaultyUpstream::start("p1").await,
        FaultyUpstream::start("p2").await,
    );
    let body = format!(
        "{PROXY_TABLES}[[workloads]]\nname = \"api\"\nprimary = [\"{}\", \"{}\"]\n",
        p1.addr(),
        p2.addr()
    );
    let proxy = ProxyProcess::start(&body).await;
    let rec = Recorder::new();
    let load = Load::start(&rec, proxy.url("/"), o.rate);
    settle(BEFORE).await;

    let fault_start = Instant::now();
    p2.set(fault);
    let marked_down = eventually(FAULT, || async {
        (!member_healthy(&proxy, 1).await?).then_some(())
    })
    .await
    .map(|()| fault_start.elapsed());
    let rest = FAULT.saturating_sub(fault_start.elapsed());
    settle(rest).await;
    p2.set(Fault::None);
    let fault_end = Instant::now();
    let hits_at_end = p2.hits();
    let back = eventually(Duration::from_secs(10), || async {
        (member_healthy(&proxy, 1).await? && p2.hits() > hits_at_end).then_some(())
    })
    .await
    .map(|()| fault_end.elapsed());
    settle(AFTER).await;
    load.stop().await;

    let state_ok = back.is_some();
    Ok(Run {
        samples: rec.snapshot(),
        fault_start: rec.at(fault_start),
        fault_end: rec.at(fault_end),
        state_ok,
        state: if state_ok {
            "the upstream is back in rotation".into()
        } else {
            "the upstream never came back into rotation".into()
        },
        exempt: false,
        notes: format!(
            "{fault:?} for {}; the proxy took it out of rotation after {}; it served again {} after the fault was lifted",
            secs(FAULT),
            marked_down.map_or("never".into(), secs),
            back.map_or("never".into(), secs),
        ),
    })
}

/// Whether the proxy counts primary member `i` as healthy.
async fn member_healthy(proxy: &ProxyProcess, i: usize) -> Option<bool> {
    let w = get_json(proxy.admin_url("/v1/workloads/api")).await?;
    w["primary"]["upstreams"][i]["healthy"].as_bool()
}
