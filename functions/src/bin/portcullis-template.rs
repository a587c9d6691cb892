//! Prints the deployment template (`make template` writes it to `infra/template.yaml`).

fn main() {
    print!("{}", portcullis_functions::template::render());
}
