//! The deployment template (`infra/template.yaml`, AWS SAM), generated from the route table so
//! that every operation has exactly one function, route and IAM role, and nothing else does.
//! `make template` writes it; a test fails when the committed file differs.

use crate::routes::{ROUTES, Route};
use portcullis::iam::{Action, Resource};
use serde_json::{Map, Value, json};

/// Operations that wait on an OAuth provider (`oauth::client::PROVIDER_TIMEOUT`, 10 s), for
/// token calls on another caller's refresh (up to 7 s), or long-poll (sign-in, up to 20 s) get
/// API Gateway's longest wait.
const SLOW: &[&str] = &[
    "sdk_auth_poll",
    "sdk_token",
    "sdk_proxy",
    "sdk_grant_revoke",
    "web_oauth_callback",
    "op_grant_revoke",
];

pub struct Sizing {
    pub memory_mb: u32,
    pub timeout_s: u32,
}

/// 256 MB: the handler itself needs under 40 MB, but Lambda's CPU share grows with memory
/// and TLS plus signing are CPU-bound.
pub fn sizing(route: &Route) -> Sizing {
    Sizing {
        memory_mb: 256,
        timeout_s: if SLOW.contains(&route.name) { 29 } else { 10 },
    }
}

/// `sdk_token` → `SdkToken`.
pub fn logical_id(name: &str) -> String {
    name.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn sub(s: &str) -> Value {
    json!({ "Fn::Sub": s })
}

fn get_att(resource: &str, attribute: &str) -> Value {
    json!({ "Fn::GetAtt": [resource, attribute] })
}

fn reference(name: &str) -> Value {
    json!({ "Ref": name })
}

fn role(route: &Route) -> Value {
    let mut statements = vec![json!({
        "Sid": "Logs",
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": sub("${LogGroup.Arn}"),
    })];
    let on = |resource: Resource| -> Vec<&'static str> {
        route
            .iam
            .actions()
            .filter(|a| a.resource() == resource)
            .map(Action::iam)
            .collect()
    };
    let table = on(Resource::Table);
    if !table.is_empty() {
        let mut resources = vec![get_att("Table", "Arn")];
        if route.iam.allows(Action::Query) {
            resources.push(sub("${Table.Arn}/index/*"));
        }
        statements.push(
            json!({"Sid": "Table", "Effect": "Allow", "Action": table, "Resource": resources}),
        );
    }
    let key = on(Resource::Key);
    if !key.is_empty() {
        statements.push(json!({"Sid": "Key", "Effect": "Allow", "Action": key, "Resource": get_att("Key", "Arn")}));
    }
    let secret = on(Resource::RootSecret);
    if !secret.is_empty() {
        statements.push(json!({"Sid": "RootSecret", "Effect": "Allow", "Action": secret, "Resource": reference("RootSecret")}));
    }
    json!({
        "Type": "AWS::IAM::Role",
        "Properties": {
            "Description": format!("Portcullis {}: only what this operation does", route.name),
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }],
            },
            "Policies": [{
                "PolicyName": "operation",
                "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
            }],
        },
    })
}

fn function(route: &Route) -> Value {
    let id = logical_id(route.name);
    let size = sizing(route);
    json!({
        "Type": "AWS::Serverless::Function",
        "Properties": {
            "Handler": route.name,
            "Role": get_att(&format!("{id}Role"), "Arn"),
            "MemorySize": size.memory_mb,
            "Timeout": size.timeout_s,
            "Events": {
                "Api": {
                    "Type": "HttpApi",
                    "Properties": {
                        "ApiId": reference("HttpApi"),
                        "Method": route.method.as_str(),
                        "Path": route.path,
                        "PayloadFormatVersion": "2.0",
                        "TimeoutInMillis": (size.timeout_s * 1000).min(30_000),
                    },
                },
            },
        },
    })
}

fn table() -> Value {
    let def: Map<String, Value> = serde_json::from_str(portcullis::store::table::DEFINITION)
        .expect("infra/table.json is JSON");
    let mut props = Map::new();
    for field in [
        "BillingMode",
        "AttributeDefinitions",
        "KeySchema",
        "GlobalSecondaryIndexes",
        "TimeToLiveSpecification",
    ] {
        props.insert(field.into(), def[field].clone());
    }
    props.insert(
        "PointInTimeRecoverySpecification".into(),
        json!({"PointInTimeRecoveryEnabled": true}),
    );
    props.insert(
        "DeletionProtectionEnabled".into(),
        json!({"Fn::If": ["ProtectTable", true, false]}),
    );
    props.insert("SSESpecification".into(), json!({"SSEEnabled": true}));
    json!({
        "Type": "AWS::DynamoDB::Table",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": props,
    })
}

fn alarm(description: &str, metric: Value, threshold: f64) -> Value {
    let mut props = json!({
        "AlarmDescription": description,
        "ComparisonOperator": "GreaterThanThreshold",
        "EvaluationPeriods": 1,
        "Threshold": threshold,
        "TreatMissingData": "notBreaching",
        "AlarmActions": {"Fn::If": ["HasAlarmTopic", [reference("AlarmTopicArn")], reference("AWS::NoValue")]},
    });
    let p = props.as_object_mut().expect("object");
    for (k, v) in metric.as_object().expect("metric object") {
        p.insert(k.clone(), v.clone());
    }
    json!({"Type": "AWS::CloudWatch::Alarm", "Properties": props})
}

fn api_metric(id: &str, name: &str) -> Value {
    json!({
        "Id": id,
        "ReturnData": false,
        "MetricStat": {
            "Metric": {
                "Namespace": "AWS/ApiGateway",
                "MetricName": name,
                "Dimensions": [{"Name": "ApiId", "Value": reference("HttpApi")}, {"Name": "Stage", "Value": "$default"}],
            },
            "Period": 300,
            "Stat": "Sum",
        },
    })
}

fn alarms() -> Vec<(String, Value)> {
    let throttles = |metric: &str| {
        json!({
            "Namespace": "AWS/DynamoDB",
            "MetricName": metric,
            "Dimensions": [{"Name": "TableName", "Value": reference("Table")}],
            "Statistic": "Sum",
            "Period": 300,
        })
    };
    vec![
        (
            "Api5xxRateAlarm".into(),
            alarm(
                "More than 1% of API requests answered 5xx over 5 minutes",
                json!({"Metrics": [
                    api_metric("errors", "5xx"),
                    api_metric("requests", "Count"),
                    {"Id": "rate", "Expression": "IF(requests > 20, 100 * errors / requests, 0)", "Label": "5xx %", "ReturnData": true},
                ]}),
                1.0,
            ),
        ),
        (
            "TableReadThrottleAlarm".into(),
            alarm(
                "DynamoDB throttled reads on the Portcullis table",
                throttles("ReadThrottleEvents"),
                0.0,
            ),
        ),
        (
            "TableWriteThrottleAlarm".into(),
            alarm(
                "DynamoDB throttled writes on the Portcullis table",
                throttles("WriteThrottleEvents"),
                0.0,
            ),
        ),
        (
            "LambdaThrottleAlarm".into(),
            alarm(
                "Lambda throttled invocations (account and region wide: concurrency is shared)",
                json!({"Namespace": "AWS/Lambda", "MetricName": "Throttles", "Statistic": "Sum", "Period": 300}),
                0.0,
            ),
        ),
    ]
}

/// The whole template as a JSON value (rendered to YAML by `render`).
pub fn template() -> Value {
    let mut resources = Map::new();
    resources.insert("Table".into(), table());
    resources.insert(
        "Key".into(),
        json!({
            "Type": "AWS::KMS::Key",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "Description": sub("Portcullis ${Stage}: wraps the data keys that seal stored secrets"),
                "EnableKeyRotation": true,
                "KeyPolicy": {
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Sid": "AccountAdministersAndDelegatesToIam",
                        "Effect": "Allow",
                        "Principal": {"AWS": sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")},
                        "Action": "kms:*",
                        "Resource": "*",
                    }],
                },
            },
        }),
    );
    resources.insert(
        "KeyAlias".into(),
        json!({
            "Type": "AWS::KMS::Alias",
            "Properties": {"AliasName": sub("alias/${AWS::StackName}"), "TargetKeyId": reference("Key")},
        }),
    );
    resources.insert(
        "RootSecret".into(),
        json!({
            "Type": "AWS::SecretsManager::Secret",
            "Properties": {
                "Description": sub("Portcullis ${Stage}: authorises POST /v1/bootstrap (the first organisation)"),
                "GenerateSecretString": {"PasswordLength": 48, "ExcludePunctuation": true},
            },
        }),
    );
    resources.insert(
        "LogGroup".into(),
        json!({
            "Type": "AWS::Logs::LogGroup",
            "Properties": {
                "LogGroupName": sub("/portcullis/${AWS::StackName}"),
                "RetentionInDays": reference("LogRetentionDays"),
            },
        }),
    );
    resources.insert(
        "HttpApi".into(),
        json!({
            "Type": "AWS::Serverless::HttpApi",
            "Properties": {"Description": sub("Portcullis ${Stage}"), "FailOnWarnings": true},
        }),
    );
    resources.insert(
        "Domain".into(),
        json!({
            "Type": "AWS::ApiGatewayV2::DomainName",
            "Condition": "HasDomain",
            // cfn-lint resolves the empty default against the ARN pattern; the condition
            // keeps the resource out whenever the parameter is empty.
            "Metadata": {"cfn-lint": {"config": {"ignore_checks": ["W1030"]}}},
            "Properties": {
                "DomainName": reference("DomainName"),
                "DomainNameConfigurations": [{"CertificateArn": reference("CertificateArn"), "EndpointType": "REGIONAL", "SecurityPolicy": "TLS_1_2"}],
            },
        }),
    );
    resources.insert(
        "DomainMapping".into(),
        json!({
            "Type": "AWS::ApiGatewayV2::ApiMapping",
            "Condition": "HasDomain",
            "Properties": {"ApiId": reference("HttpApi"), "DomainName": reference("Domain"), "Stage": "$default"},
            "DependsOn": "HttpApiApiGatewayDefaultStage",
        }),
    );
    for route in ROUTES {
        let id = logical_id(route.name);
        resources.insert(format!("{id}Role"), role(route));
        resources.insert(format!("{id}Function"), function(route));
    }
    for (id, a) in alarms() {
        resources.insert(id, a);
    }
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Description": "Portcullis: a credential vault and authorization layer for AI agents (one Lambda function per operation over one DynamoDB table). Generated by `make template` from functions/src/routes.rs; do not edit by hand.",
        "Parameters": {
            "Stage": {"Type": "String", "AllowedValues": ["prod", "staging"], "Default": "prod",
                "Description": "Deploy each stage as its own stack: its own table, key, secret and API."},
            "Architecture": {"Type": "String", "AllowedValues": ["arm64", "x86_64"], "Default": "arm64",
                "Description": "The architecture the bootstrap binary was built for."},
            "LogRetentionDays": {"Type": "Number", "Default": 30,
                "AllowedValues": [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]},
            "TableDeletionProtection": {"Type": "String", "AllowedValues": ["true", "false"], "Default": "true"},
            "DomainName": {"Type": "String", "Default": "", "Description": "Optional custom domain, e.g. vault.example.com"},
            "CertificateArn": {"Type": "String", "Default": "", "Description": "ACM certificate for DomainName, in this region"},
            "AlarmTopicArn": {"Type": "String", "Default": "", "Description": "Optional SNS topic the alarms notify"},
        },
        "Conditions": {
            "HasDomain": {"Fn::Not": [{"Fn::Equals": [reference("DomainName"), ""]}]},
            "ProtectTable": {"Fn::Equals": [reference("TableDeletionProtection"), "true"]},
            "HasAlarmTopic": {"Fn::Not": [{"Fn::Equals": [reference("AlarmTopicArn"), ""]}]},
        },
        "Globals": {
            "Function": {
                "Runtime": "provided.al2023",
                "Architectures": [reference("Architecture")],
                "CodeUri": "../target/lambda/bootstrap/bootstrap.zip",
                "LoggingConfig": {"LogGroup": reference("LogGroup"), "LogFormat": "JSON"},
                "Environment": {"Variables": {
                    "PORTCULLIS_TABLE": reference("Table"),
                    "PORTCULLIS_KMS_KEY_ID": get_att("Key", "Arn"),
                    "PORTCULLIS_ROOT_SECRET_ARN": reference("RootSecret"),
                    // Without a custom domain the functions take the public URL from API
                    // Gateway's request context (referring to the API here would be a cycle).
                    "PORTCULLIS_PUBLIC_URL": {"Fn::If": ["HasDomain", sub("https://${DomainName}"), reference("AWS::NoValue")]},
                    "PORTCULLIS_STAGE": reference("Stage"),
                }},
            },
        },
        "Resources": resources,
        "Outputs": {
            "ApiUrl": {"Description": "Base URL for the SDK (ALTER_BASE_URL) and the operator API",
                "Value": {"Fn::If": ["HasDomain", sub("https://${DomainName}"), sub("https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}")]}},
            "TableName": {"Value": reference("Table")},
            "KeyArn": {"Value": get_att("Key", "Arn")},
            "RootSecretArn": {"Description": "Read it once to bootstrap the first organisation", "Value": reference("RootSecret")},
            "LogGroupName": {"Value": reference("LogGroup")},
        },
    })
}

/// The template as committed: YAML, with a header saying where it comes from.
pub fn render() -> String {
    let yaml = serde_yaml_ng::to_string(&template()).expect("the template serialises");
    format!(
        "# Generated by `make template` from functions/src/routes.rs and each operation's IAM\n\
         # policy; do not edit by hand. Deploy: docs/deploy.md.\n{yaml}"
    )
}
