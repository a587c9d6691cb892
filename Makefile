# The two commands of the README, and a few helpers around them.
.PHONY: run test stop bench lint fmt template package

run:            ## a local Portcullis with demo data, left running
	@scripts/run.sh

test:           ## every test: Rust unit and integration tests, alter-sdk compatibility suite, lint
	@scripts/test.sh

stop:           ## stop what `make run` started
	@scripts/stop.sh

bench:          ## DynamoDB round trips and handler CPU time per operation
	@scripts/bench.sh

package:        ## the release Lambda zip (target/lambda/bootstrap/bootstrap.zip); ARCH=arm64|x86_64
	@scripts/package.sh $(ARCH)

template:       ## regenerate infra/template.yaml from the route table and IAM declarations
	cargo run --quiet -p portcullis-functions --bin portcullis-template > infra/template.yaml

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings

fmt:
	cargo fmt --all
