# fediops.mastodon: the two operator-facing commands are `make demo` and `make test`.
# Every target installs what it needs first and skips what is already there.
SHELL := /bin/bash
SCENARIO ?=
PLATFORM ?=
RELEASES ?= bookworm trixie

.PHONY: demo test venv docker host-packages images units sanity lint tarball molecule clean

# The engine and its base image, and the venv, are made side by side: neither waits on the other.
demo:
	@{ ./scripts/ensure-docker.sh && ./scripts/build-images.sh bookworm; } & venv=0; ./scripts/bootstrap-venv.sh || venv=$$?; \
	  wait $$! && [ $$venv -eq 0 ]
	@./scripts/bake-standin.sh bookworm
	@./scripts/demo.sh

test: venv docker
	@./scripts/run-tests.sh $(if $(SCENARIO),--scenario $(SCENARIO)) $(if $(PLATFORM),--platform $(PLATFORM))

venv:
	@./scripts/bootstrap-venv.sh

docker:
	@./scripts/ensure-docker.sh

host-packages:
	@./scripts/ensure-host-packages.sh

images: docker
	@./scripts/build-images.sh $(RELEASES) && ./scripts/bake-standin.sh $(RELEASES)

units: venv host-packages
	@./scripts/run-tests.sh --only units

sanity: venv
	@./scripts/run-tests.sh --only sanity

lint: venv
	@./scripts/run-tests.sh --only lint

tarball: venv
	@./scripts/run-tests.sh --only tarball

molecule: venv docker
	@./scripts/run-tests.sh --only molecule $(if $(SCENARIO),--scenario $(SCENARIO)) $(if $(PLATFORM),--platform $(PLATFORM))

clean:
	rm -rf .cache tests/output
