//! The deployment template agrees with the code: it is the generator's current output, every
//! operation has exactly one function, route and role (holding exactly the operation's IAM
//! actions), the local router sends each template route to the same operation, and no
//! function or route exists without an operation.

use portcullis::iam::{self, Action};
use portcullis_functions::routes::{self, ROUTES, Resolved};
use portcullis_functions::template;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

const COMMITTED: &str = include_str!("../../infra/template.yaml");

fn committed() -> Value {
    serde_yaml_ng::from_str(COMMITTED).expect("infra/template.yaml parses")
}

#[test]
fn the_committed_template_is_the_generated_one() {
    assert!(
        COMMITTED == template::render(),
        "infra/template.yaml is stale: run `make template` and commit it"
    );
}

/// A route path as the local router would receive it, with a value in each parameter.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "x1" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn every_operation_has_exactly_one_function_route_and_role() {
    let t = committed();
    let resources = t["Resources"].as_object().expect("resources");
    let mut functions: BTreeMap<String, (String, String, String)> = BTreeMap::new();
    for (id, r) in resources {
        if r["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let p = &r["Properties"];
        let handler = p["Handler"].as_str().expect("handler").to_string();
        let events: Vec<&Value> = p["Events"].as_object().expect("events").values().collect();
        assert_eq!(events.len(), 1, "{id}: one route per function");
        let e = &events[0]["Properties"];
        let role = p["Role"]["Fn::GetAtt"][0]
            .as_str()
            .expect("role")
            .to_string();
        let route = (
            e["Method"].as_str().unwrap().to_string(),
            e["Path"].as_str().unwrap().to_string(),
            role,
        );
        assert!(
            functions.insert(handler.clone(), route).is_none(),
            "{handler} has two functions"
        );
    }
    let names: BTreeSet<&str> = ROUTES.iter().map(|r| r.name).collect();
    let in_template: BTreeSet<&str> = functions.keys().map(String::as_str).collect();
    assert_eq!(
        names, in_template,
        "operations and template functions differ"
    );

    for route in ROUTES {
        let (method, path, role) = &functions[route.name];
        assert_eq!(
            (method.as_str(), path.as_str()),
            (route.method.as_str(), route.path)
        );
        // The local router sends the template's route to the same operation.
        match routes::resolve(&route.method, &concrete(path)) {
            Resolved::Found(found, _) => assert_eq!(found.name, route.name, "{method} {path}"),
            _ => panic!("the local router does not serve {method} {path}"),
        }
        // The role allows exactly the operation's declared actions, on this stack's resources.
        let statements =
            resources[role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
                .as_array()
                .expect("statements");
        let mut granted = BTreeSet::new();
        for s in statements {
            assert_eq!(s["Effect"], "Allow");
            assert_ne!(
                s["Resource"], "*",
                "{}: a statement on every resource",
                route.name
            );
            for a in s["Action"].as_array().expect("actions") {
                granted.insert(a.as_str().unwrap().to_string());
            }
        }
        let mut declared: BTreeSet<String> =
            route.iam.actions().map(|a| a.iam().to_string()).collect();
        declared.extend(["logs:CreateLogStream", "logs:PutLogEvents"].map(String::from));
        assert_eq!(
            granted, declared,
            "{}: role and IAM declaration differ",
            route.name
        );
    }
    let roles = resources
        .values()
        .filter(|r| r["Type"] == "AWS::IAM::Role")
        .count();
    assert_eq!(roles, ROUTES.len(), "a role without a function");
}

#[test]
fn only_the_bootstrap_reads_the_root_secret_and_pages_touch_no_keys() {
    for route in ROUTES {
        assert_eq!(
            route.iam.allows(Action::GetRootSecret),
            route.name == "op_bootstrap",
            "{}",
            route.name
        );
    }
    let page = routes::by_name("web_connect_page").unwrap();
    assert_eq!(page.iam, iam::Policy::NONE);
}

#[test]
fn the_table_in_the_template_is_the_one_definition() {
    let t = committed();
    let table = &t["Resources"]["Table"]["Properties"];
    let def: Value = serde_json::from_str(portcullis::store::table::DEFINITION).unwrap();
    for field in [
        "AttributeDefinitions",
        "KeySchema",
        "GlobalSecondaryIndexes",
        "TimeToLiveSpecification",
        "BillingMode",
    ] {
        assert_eq!(table[field], def[field], "{field}");
    }
    assert_eq!(
        table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );
}
