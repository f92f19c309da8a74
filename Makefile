# kubeforge.cluster: `make lab` brings up the lab cluster, `make test` runs every check.
# Both do their own set-up on a fresh machine (venv, Docker engine, node image, artifacts).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
COLLECTION_LINK := .cache/collections/ansible_collections/kubeforge/cluster
LAB_INVENTORY := inventory/lab/hosts.yml
LAB_KUBE_VERSION = $(shell sed -n 's/^kube_version: *"\{0,1\}\([0-9.]*\).*/\1/p' inventory/sample/group_vars/all.yml)
ARTIFACTS := .cache/artifacts

# The molecule scenarios of `make test` (CI's budget); test-all adds the day-2 ones (upgrade needs
# artifacts-all: Kubernetes 1.37 and etcd 3.6), a cluster converged
# and changed each (times in the README).
SCENARIOS := etcd etcd_migration site
SCENARIOS_DAY2 := day2 upgrade
# molecule wraps the output it boxes at the terminal's width (80 columns in CI): wide enough that a
# failed test's id and assertion stay whole lines (.ci/run prints them again at the end).
MOLECULE_COLUMNS := 320

.PHONY: help venv collection docker image artifacts artifacts-all lab lab-destroy test test-all lint sanity unit integration molecule molecule-day2 bench clean

help:
	@echo "make lab          create the lab hosts (Docker) and run site.yml against them"
	@echo "make lab-destroy  remove the lab hosts"
	@echo "make test         lint, sanity, unit and integration tests, molecule scenarios (CI)"
	@echo "make test-all     make test, then the day-2 molecule scenarios"
	@echo "make bench        bench/converge.py: fresh converge, re-run and one added worker on the lab topology"

$(VENV)/.installed: requirements.txt requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-test.txt
	touch $@

venv: $(VENV)/.installed

# Ansible finds this checkout as kubeforge.cluster through a link in .cache (see ansible.cfg).
collection: venv
	@mkdir -p $(dir $(COLLECTION_LINK))
	@ln -sfn $(CURDIR) $(COLLECTION_LINK)

docker:
	@tests/harness/ensure-docker.sh

image: docker
	@mkdir -p .cache
	@tests/harness/node-image/build.sh > .cache/node-image

# The real upstream programs, built from their Go modules into ~/.cache/kubeforge (seconds when
# warm): the versions the lab and the tests run; artifacts-all adds Kubernetes 1.37 and etcd 3.6.
artifacts:
	@tests/harness/build-artifacts.sh $(ARTIFACTS)

artifacts-all:
	@tests/harness/build-artifacts.sh $(ARTIFACTS) --all-versions

lab: collection image artifacts
	tests/harness/host-kernel.sh
	tests/harness/lab.sh up "$$(cat .cache/node-image)"
	$(BIN)/ansible-playbook site.yml -i $(LAB_INVENTORY)
	@echo
	@echo "Lab hosts: kf-cp1 kf-cp2 kf-cp3 (control plane + etcd), kf-w1 (worker); shell: docker exec -it kf-cp1 bash"
	@echo "Admin kubeconfig: $(CURDIR)/inventory/lab/credentials/admin.kubeconfig (server https://172.30.40.11:6443, kf-cp1's apiserver)"
	@echo "Try: $$(readlink -f $(ARTIFACTS))/release/v$(LAB_KUBE_VERSION)/bin/linux/amd64/kubectl --kubeconfig $(CURDIR)/inventory/lab/credentials/admin.kubeconfig get --raw /version"

lab-destroy:
	tests/harness/lab.sh down
	rm -rf .cache/facts

test: lint sanity unit integration molecule

test-all: test molecule-day2

lint: collection
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint --profile production

sanity: collection
	tests/harness/sanity.sh

unit: collection
	$(BIN)/python -m pytest -q tests/unit

# Real etcd (Debian's 3.5 packages) on loopback; the apiserver tests take kube-apiserver and
# kube-scheduler from the artifacts.
integration: collection artifacts
	tests/harness/fetch-etcd.sh >/dev/null
	$(BIN)/python -m pytest -q -m integration tests/integration

molecule: collection image artifacts
	tests/harness/host-kernel.sh
	for scenario in $(SCENARIOS); do \
	  COLUMNS=$(MOLECULE_COLUMNS) KUBEFORGE_NODE_IMAGE="$$(cat .cache/node-image)" $(BIN)/molecule test -s $$scenario; \
	done

molecule-day2: collection image artifacts-all
	tests/harness/host-kernel.sh
	for scenario in $(SCENARIOS_DAY2); do \
	  COLUMNS=$(MOLECULE_COLUMNS) KUBEFORGE_NODE_IMAGE="$$(cat .cache/node-image)" $(BIN)/molecule test -s $$scenario; \
	done

bench: collection image artifacts
	tests/harness/host-kernel.sh
	$(BIN)/python bench/converge.py --image "$$(cat .cache/node-image)"

clean: lab-destroy
	rm -rf .cache $(VENV)
