//! The proxy admin API's JSON bodies: the shadow weight and the shadow pool, decoded as axum does.
#![no_main]

use axum::Json;
use libfuzzer_sys::fuzz_target;
use proxy::admin::{PoolBody, WeightBody};

fuzz_target!(|data: &[u8]| {
    // `Json::from_bytes` is what the handlers' `Json<T>` extractor runs on the body.
    if let Ok(Json(body)) = Json::<WeightBody>::from_bytes(data) {
        let _ = body.shadow_weight();
    }
    if let Ok(Json(body)) = Json::<PoolBody>::from_bytes(data) {
        let _ = body.addresses();
    }
});
