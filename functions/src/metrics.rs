//! CloudWatch Embedded Metric Format: one JSON line per request on the function's stdout,
//! which CloudWatch Logs turns into metrics (namespace `Portcullis`, dimension `Operation`)
//! without an API call on the request path.

use serde_json::json;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub struct Sample {
    pub operation: &'static str,
    pub status: u16,
    pub latency: Duration,
    pub dynamodb_calls: usize,
}

pub fn emf_line(s: &Sample) -> String {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    json!({
        "_aws": {
            "Timestamp": now_ms,
            "CloudWatchMetrics": [{
                "Namespace": "Portcullis",
                "Dimensions": [["Operation"]],
                "Metrics": [
                    {"Name": "Requests", "Unit": "Count"},
                    {"Name": "ServerErrors", "Unit": "Count"},
                    {"Name": "ClientErrors", "Unit": "Count"},
                    {"Name": "Latency", "Unit": "Milliseconds"},
                    {"Name": "DynamoDBCalls", "Unit": "Count"},
                ],
            }],
        },
        "Operation": s.operation,
        "Requests": 1,
        "ServerErrors": u8::from(s.status >= 500),
        "ClientErrors": u8::from((400..500).contains(&s.status)),
        "Latency": (s.latency.as_secs_f64() * 1e6).round() / 1e3,
        "DynamoDBCalls": s.dynamodb_calls,
        "StatusCode": s.status,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn a_line_declares_every_metric_it_carries() {
        let line = emf_line(&Sample {
            operation: "sdk_token",
            status: 503,
            latency: Duration::from_micros(12_345),
            dynamodb_calls: 2,
        });
        let v: Value = serde_json::from_str(&line).unwrap();
        let declared = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Dimensions"][0][0], "Operation");
        for m in declared["Metrics"].as_array().unwrap() {
            let name = m["Name"].as_str().unwrap();
            assert!(v[name].is_number(), "{name} is declared but not set");
        }
        assert_eq!(v["Operation"], "sdk_token");
        assert_eq!(
            (v["ServerErrors"].as_u64(), v["ClientErrors"].as_u64()),
            (Some(1), Some(0))
        );
        assert_eq!(v["Latency"], 12.345);
        assert_eq!(v["DynamoDBCalls"], 2);
        assert!(!line.contains('\n'));
    }
}
