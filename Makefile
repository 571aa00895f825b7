# diecast-t1: every target creates and reuses .venv by itself.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DIECAST := $(VENV)/bin/diecast
STAMP := $(VENV)/.installed

VERSION ?= v1.0
DATA ?= data/die_casting.csv
FORCE ?=
TEST_WORKERS ?= 2  # pytest-xdist workers for make test; each test file runs whole on one worker
OUT ?=
EVENT ?= tests/events/direct_named.json
FORCE_FLAG := $(if $(filter 1 yes true,$(FORCE)),--force,)
SEED ?=
MAX_EPOCHS ?=
REUSE_AE ?=
CV_FOLDS ?=
SEARCH_BUDGET ?=
LATENT_DIM ?=
# make train's MODEL= is the classifier's kind (make invoke's MODEL= a model version or folder)
TRAIN_FLAGS := $(if $(SEED),--seed $(SEED),) $(if $(MAX_EPOCHS),--max-epochs $(MAX_EPOCHS),) \
	$(if $(REUSE_AE),--reuse-ae $(REUSE_AE),) $(if $(CV_FOLDS),--cv-folds $(CV_FOLDS),) \
	$(if $(SEARCH_BUDGET),--search-budget $(SEARCH_BUDGET),) $(if $(MODEL),--kind $(MODEL),) \
	$(if $(LATENT_DIM),--latent-dim $(LATENT_DIM),)

.DEFAULT_GOAL := help
.PHONY: help venv data train convert convert-check demo monitor-demo invoke explain importance explain-charts test lint format bench image-test image ecr-push deploy clean \
	compare bench-score docs score monitor ui

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# The pinned sets (requirements-*.txt) give every version; the project itself is then installed editable, without
# resolving again, so that $(DIECAST) runs this checkout.
$(STAMP): pyproject.toml requirements-runtime.txt requirements-convert.txt requirements-monitor.txt requirements-batch.txt \
		requirements-compare.txt requirements-explain.txt requirements-ui.txt requirements-docs.txt requirements-ablation.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@$(PY) -c "from convert import kernels; kernels.warn_if_cuda_build()"  # the CPU build is the one wanted
	@touch $@

venv: $(STAMP) ## create .venv: the project (editable, the `diecast` command) with every extra, test, lint and docs tool

data: $(STAMP) ## regenerate the embedded synthetic dataset and its schema
	$(DIECAST) data

train: $(STAMP) ## train originals into deployment_models/VERSION (MODEL=kind, LATENT_DIM=, DATA=, SEED=, MAX_EPOCHS=, REUSE_AE=, CV_FOLDS=, SEARCH_BUDGET=, FORCE=1)
	$(DIECAST) train --model $(VERSION) --data $(DATA) $(TRAIN_FLAGS) $(FORCE_FLAG)

convert: $(STAMP) ## export deployment_models/VERSION to models_onnx/VERSION (OUT= another model folder) with its certificate (FORCE=1)
	$(DIECAST) convert --model $(VERSION) $(if $(OUT),--out $(OUT),) $(FORCE_FLAG)

convert-check: $(STAMP) ## CI: convert into build/convert-check/VERSION, certify it, require model.onnx byte-identical to the shipped one
	$(DIECAST) convert --model $(VERSION) --out build/convert-check/$(VERSION) --force --compare-to $(VERSION)

demo: $(STAMP) ## the main job end to end on the embedded data, in build/demo (train, convert, serve)
	rm -rf build/demo
	$(DIECAST) train --model build/demo/deployment_models/$(VERSION)
	$(DIECAST) convert --model build/demo/deployment_models/$(VERSION) --out build/demo/models_onnx/$(VERSION)
	@for e in tests/events/direct_named.json tests/events/batch.json tests/events/rest_predict.json; do \
		echo "== $$e"; $(DIECAST) invoke --model build/demo/models_onnx/$(VERSION) --quiet-log $$e || exit 1; done
	@e=tests/events/bad_missing_feature.json; expect=$$($(PY) -c "from diecast import exits; print(exits.INVOKE_ERROR_ANSWER)"); \
		echo "== $$e (a typed 400: diecast invoke exits $$expect)"; \
		$(DIECAST) invoke --model build/demo/models_onnx/$(VERSION) --quiet-log $$e; code=$$?; \
		test $$code -eq $$expect || { echo "make demo: expected exit $$expect for $$e, got $$code" >&2; exit 1; }

invoke: $(STAMP) ## print the handler's response to EVENT=tests/events/<name>.json (MODEL=version or folder, default v1.0)
	$(DIECAST) invoke $(if $(MODEL),--model $(MODEL),) $(EVENT)

explain: $(STAMP) ## explain EVENT=tests/events/<name>.json with the explain function: each reading's contribution (MODEL=version or folder)
	$(DIECAST) explain $(if $(MODEL),--model $(MODEL),) $(EVENT)

importance: $(STAMP) ## print a model's global importance ranking (MODEL=version or folder, default v1.0)
	$(DIECAST) importance $(if $(MODEL),--model $(MODEL),)

explain-charts: $(STAMP) ## redraw docs/img/explaining_*.png from the shipped v1.0
	$(PY) docs/scripts/explaining_charts.py

score: $(STAMP) ## batch-score INPUT=readings.csv|.parquet into OUTPUT=scores.csv|.parquet (MODEL=version or folder, SCORE_ARGS="--engine ray")
	@test -n "$(INPUT)" -a -n "$(OUTPUT)" || { echo "make score needs INPUT= and OUTPUT=, e.g. make score INPUT=data/die_casting.csv OUTPUT=build/scores.csv" >&2; exit 2; }
	$(DIECAST) score $(if $(MODEL),--model $(MODEL),) $(SCORE_ARGS) $(INPUT) $(OUTPUT)

PORT ?= 8501
MODEL_VERSION ?= $(VERSION)
ui: $(STAMP) ## the operator web page on http://127.0.0.1:PORT (PORT=8501), the handler embedded on MODEL_VERSION=v1.0
	$(DIECAST) ui --port $(PORT) --model $(MODEL_VERSION)

monitor: $(STAMP) ## the monitor on captured predictions: MONITOR_ARGS="..." (diecast monitor --help lists them)
	$(DIECAST) monitor $(MONITOR_ARGS)

docs: $(STAMP) ## build the documentation site into build/site; a broken link or a page left out of the nav fails
	$(VENV)/bin/mkdocs build --strict -d build/site

lint: $(STAMP) ## ruff lint + format check, mypy on the serving path, cfn-lint and checkov on the SAM template
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(VENV)/bin/cfn-lint template.yaml ui/template.yaml
	$(MAKE) --no-print-directory iac-scan

# checkov lives in its own venv (requirements-iac.txt): its dependency tree stays out of the pinned dev environment.
.PHONY: iac-scan power-tune
IAC_VENV := .venv-iac
IAC_STAMP := $(IAC_VENV)/.installed

$(IAC_STAMP): requirements-iac.txt
	@test -x $(IAC_VENV)/bin/python || $(PYTHON) -m venv $(IAC_VENV)
	$(IAC_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-iac.txt
	@touch $@

iac-scan: $(IAC_STAMP) ## checkov on template.yaml and ui/template.yaml: 0 failed checks; every skip is inline with its reason
	$(IAC_VENV)/bin/checkov --file template.yaml --file ui/template.yaml --framework cloudformation --compact --quiet \
		--skip-download

format: $(STAMP) ## apply ruff's formatter and autofixes
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

test: $(STAMP) lint docs ## lint, the docs build, the whole test suite, then a scratch conversion with its parity certificate
	bash ui/ensure-chromium.sh
	$(PY) -m pytest --durations=12 -n $(TEST_WORKERS) --dist loadfile
	$(MAKE) convert-check

# DATA and OUT have defaults for train/convert; compare passes them on only when given (command line or environment).
OLD ?= v1.0
NEW ?=
_given = $(filter command line environment,$(origin $(1)))
COMPARE_ARGS ?=
_COMPARE_FLAGS = $(if $(call _given,DATA),--data $(DATA),) $(if $(call _given,OUT),--out $(OUT),) $(COMPARE_ARGS)

compare: $(STAMP) ## compare two certified models: NEW=v1.1 [OLD=v1.0] [DATA=labelled.csv] [OUT=dir] [COMPARE_ARGS="--guard f1"] (fails unless promote)
	@test -n "$(NEW)" || { echo "make compare needs NEW=<version or folder>, e.g. make compare OLD=v1.0 NEW=v1.1" >&2; exit 2; }
	@echo "$(DIECAST) compare --old $(OLD) --new $(NEW) $(_COMPARE_FLAGS)"; \
		$(DIECAST) compare --old $(OLD) --new $(NEW) $(_COMPARE_FLAGS); code=$$?; \
		test $$code -eq 0 || echo "make compare: not a promote: diecast compare exited $$code (diecast compare --help lists its exit codes)" >&2; \
		exit $$code

bench-score: $(STAMP) ## batch-scoring throughput at 1 and 2 workers and on local Ray; writes build/bench/score.json
	$(PY) -m benchmarks.score_throughput

clean: ## remove build outputs (keeps .venv)
	rm -rf build .pytest_cache .ruff_cache .mypy_cache .hypothesis .benchmarks *.egg-info

bench: $(STAMP) ## latency/throughput/cold-start/size benchmarks with CI gates; writes build/bench/
	@mkdir -p build/bench
	$(PY) -m pytest benchmarks -p no:randomly --benchmark-json=build/bench/benchmark.json \
		--benchmark-columns=min,median,mean,max,rounds --benchmark-sort=name

image-test: $(STAMP) ## build the slim Lambda image on a local debootstrap base, invoke it via the Runtime API, time it vs torch
	bash docker/ensure-docker.sh
	$(PY) docker/image_test.py

power-tune: $(STAMP) ## the slim image per memory size under Lambda's CPU share: latency, INIT, $/M, a recommendation; build/power-tune/
	bash docker/ensure-docker.sh
	$(PY) docker/power_tune.py

# Deploy path (needs AWS credentials, the AWS CLI, SAM CLI and a Docker with registry access; not run in CI).
# Defaults: the original deployment's region and repository, so the new image replaces the old function in place.
AWS_REGION ?= ap-northeast-2
ECR_REPO ?= diecasting-predict-t1
STACK ?= diecast-t1
IMAGE_TAG ?= $(VERSION)
DEPLOY_PARAMS ?= # more template parameters, e.g. "SubnetIds=subnet-a,subnet-b SecurityGroupIds=sg-1 SnapStart=true"
ACCOUNT = $(shell aws sts get-caller-identity --query Account --output text)
ECR_URI = $(ACCOUNT).dkr.ecr.$(AWS_REGION).amazonaws.com/$(ECR_REPO)

image: ## build the production image on AWS's Lambda Python 3.12 base (linux/amd64)
	DOCKER_BUILDKIT=1 docker build --platform linux/amd64 --build-arg MODEL_VERSION=$(VERSION) \
		--secret id=cacert,src=/etc/ssl/certs/ca-certificates.crt -t $(ECR_REPO):$(IMAGE_TAG) .

ecr-push: image ## create the ECR repository if needed, log in, tag and push $(ECR_REPO):$(IMAGE_TAG)
	aws ecr describe-repositories --region $(AWS_REGION) --repository-names $(ECR_REPO) >/dev/null 2>&1 || \
		aws ecr create-repository --region $(AWS_REGION) --repository-name $(ECR_REPO) \
		--image-scanning-configuration scanOnPush=true --image-tag-mutability IMMUTABLE
	aws ecr get-login-password --region $(AWS_REGION) | \
		docker login --username AWS --password-stdin $(ACCOUNT).dkr.ecr.$(AWS_REGION).amazonaws.com
	docker tag $(ECR_REPO):$(IMAGE_TAG) $(ECR_URI):$(IMAGE_TAG)
	docker push $(ECR_URI):$(IMAGE_TAG)

deploy: ## sam deploy template.yaml: new version behind the `live` alias, canary with alarm rollback
	sam deploy --template-file template.yaml --stack-name $(STACK) --region $(AWS_REGION) \
		--capabilities CAPABILITY_IAM --image-repository $(ECR_URI) --no-fail-on-empty-changeset \
		--parameter-overrides ImageUri=$(ECR_URI):$(IMAGE_TAG) ModelVersion=$(VERSION) $(DEPLOY_PARAMS)

monitor-demo: $(STAMP) ## 8 simulated weeks through the handler (capture on), drift from week 5, then the monitor
	$(PY) -m monitor.demo --out build/monitor-demo

# The ablation study (the ablation package; never in the serving image).
.PHONY: ablation
BUDGET ?=
QUICK ?=
FRESH ?=
ablation: $(STAMP) ## the ablation study into OUT= (default build/ablation) on DATA= (BUDGET=seconds, QUICK=1 the small grid, FRESH=1 redo finished units)
	$(DIECAST) ablation --data $(DATA) $(if $(OUT),--out $(OUT),) $(if $(BUDGET),--budget $(BUDGET),) \
		$(if $(filter 1 yes true,$(QUICK)),--quick,) $(if $(filter 1 yes true,$(FRESH)),--fresh,)
