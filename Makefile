# Thin wrappers over the nnlab CLI. Everything builds under the (optimised) dev profile, so tests,
# benches and reports share one build of the numerical stack.

PROFILE ?= full
SEED ?= 42
CARGO ?= cargo
NNLAB := $(CARGO) run --quiet --bin nnlab --

# A relative mirror path would be resolved against each test crate's own directory: make it absolute.
ifdef NNLAB_DATA_MIRROR
export NNLAB_DATA_MIRROR := $(abspath $(NNLAB_DATA_MIRROR))
endif

.PHONY: reports test data bench clean help reference compare

help:
	@echo "make reports [PROFILE=full|quick|smoke] [SEED=42]  train, aggregate and render into reports/latest/"
	@echo "make test                                         unit and integration tests (smoke profile, real MNIST; NNLAB_SLURM=1: also on Slurm)"
	@echo "make data                                         verify or download the datasets into data/"
	@echo "make bench                                        throughput benchmarks"
	@echo "make compare A=runs/x B=runs/y                    B against A with statistics (runs, bench outputs, peer JSON lines)"
	@echo "make reference ASSIGNMENT=tp                      the committed reference solution of one assignment (full profile)"
	@echo "make bench-peer                                   the same models under Keras/TensorFlow (needs pip)"
	@echo "make tsne-peer                                    scikit-learn's t-SNE on the projection_bench images (needs pip)"
	@echo "make fidelity-peer [PROFILE=...]                  nnlab vs Keras in distribution on the cheap models (needs pip)"
	@echo "make keras-replay                                 regenerate the Keras trajectory fixtures of the replay test (needs pip)"
	@echo "make clean                                        remove runs/ and reports/ (the committed reports/reference/ stays)"

reports:
	$(NNLAB) run --profile $(PROFILE) --seed $(SEED) --run-dir runs/$(PROFILE) --report-dir reports/$(PROFILE)

# With NNLAB_SLURM=1 (a running Slurm, as .ci/slurm-up.sh starts) the Slurm test runs too; without,
# cargo lists it as ignored.
test:
	$(CARGO) test --workspace
ifeq ($(NNLAB_SLURM),1)
	$(CARGO) test --test slurm -- --ignored
endif

data:
	$(NNLAB) fetch --dataset mnist --dataset cifar10

bench:
	$(NNLAB) bench
	$(CARGO) run --quiet --example conv_bench -p nnlab-lowlevel
	$(CARGO) run --quiet --example projection_bench -p nnlab-analysis

# B against A, as `nnlab compare` explains; the page lands in reports/compare/.
compare:
	$(NNLAB) compare $(A) $(B) --out-dir reports/compare

# The reference solution, committed: one assignment's full-profile run rendered into
# reports/reference/<assignment>/ with its answer key (key.toml) and run manifest. Hours per assignment
# on a laptop; a finished run directory is reused, so an interrupted one resumes.
ASSIGNMENT ?= tp
reference:
	$(NNLAB) run --profile full --seed $(SEED) --only $(ASSIGNMENT) --run-dir runs/reference-$(ASSIGNMENT) --report-dir reports/reference/$(ASSIGNMENT)
	cp runs/reference-$(ASSIGNMENT)/manifest.json reports/reference/$(ASSIGNMENT)/manifest.json

clean:
	rm -rf runs $(filter-out reports/reference,$(wildcard reports/*))

# The Keras/TensorFlow peer, for side-by-side throughput (optional; the pipeline never needs Python).
PEER_VENV ?= .venv-peer
.PHONY: bench-peer
# Both sides run back to back on the same machine and end in one table, reports/bench/comparison.{md,csv}.
PEER_MODELS ?= a1.softmax_regression a1.dense_linear a1.dense_relu a1.cnn a1.cnn_dropout a1.cifar_cnn \
	a7a.base a7a.weight_decay a7a.cnn1 a7a.cnn2 a7a.cnn3 a7a.cnn4 a7a.cnn5 a7a.cnn6 a7a.autoencoder \
	a7b.dense125 a7b.dense100 a7b.cnn tp.logreg tp.mlp tp.cnn
bench-peer:
	test -x $(PEER_VENV)/bin/python || (python3 -m venv $(PEER_VENV) && $(PEER_VENV)/bin/pip install tensorflow-cpu)
	mkdir -p reports/bench
	$(PEER_VENV)/bin/python bench/keras_peer.py $(PEER_MODELS) | tee reports/bench/keras_peer.jsonl
	$(NNLAB) bench --out-dir reports/bench --peer reports/bench/keras_peer.jsonl $(addprefix --experiment ,$(PEER_MODELS))

# scikit-learn's Barnes-Hut t-SNE of the MNIST test images projection_bench embeds, timed (optional peer).
MNIST_DIR ?= $(if $(NNLAB_DATA_MIRROR),$(NNLAB_DATA_MIRROR)/mnist,data/mnist)
.PHONY: tsne-peer
tsne-peer:
	$(NNLAB) fetch --dataset mnist
	test -x $(PEER_VENV)/bin/python || python3 -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/python -c "import sklearn" 2>/dev/null || $(PEER_VENV)/bin/pip install scikit-learn
	$(PEER_VENV)/bin/python bench/tsne_peer.py $(MNIST_DIR)/t10k-images-idx3-ubyte.gz $(MNIST_DIR)/t10k-labels-idx1-ubyte.gz 1000 10000

# Fidelity to Keras in distribution (optional): the cheap models trained under Keras with the
# catalogue's own settings and FIDELITY_SEEDS seeds, then by nnlab, then `nnlab compare` of the two
# (reports/fidelity/compare.html). PROFILE=quick for a fast look. CIFAR-10 only when asked for
# (FIDELITY_MODELS=a1.cifar_cnn: a replicate takes ~25 min for nnlab and ~55 for Keras on one core here).
FIDELITY_MODELS ?= a1.dense_linear a1.dense_relu a1.softmax_regression tp.logreg tp.mlp
FIDELITY_SEEDS ?= 3
FIDELITY_CIFAR := $(filter %cifar_cnn,$(FIDELITY_MODELS))
CIFAR10_TARBALL ?= $(if $(NNLAB_DATA_MIRROR),$(NNLAB_DATA_MIRROR)/cifar10,data/cifar10)/cifar-10-binary.tar.gz
.PHONY: fidelity-peer keras-replay
fidelity-peer:
	test -x $(PEER_VENV)/bin/python || (python3 -m venv $(PEER_VENV) && $(PEER_VENV)/bin/pip install tensorflow-cpu)
	$(NNLAB) fetch --dataset mnist $(if $(FIDELITY_CIFAR),--dataset cifar10)
	mkdir -p reports/fidelity
	$(NNLAB) catalogue > reports/fidelity/catalogue.json
	$(PEER_VENV)/bin/python bench/keras_fidelity.py --catalogue reports/fidelity/catalogue.json --mnist $(MNIST_DIR) $(if $(FIDELITY_CIFAR),--cifar10 $(CIFAR10_TARBALL)) --profile $(PROFILE) --seeds $(FIDELITY_SEEDS) $(FIDELITY_MODELS) | tee reports/fidelity/keras-$(PROFILE).jsonl
	$(NNLAB) run --profile $(PROFILE) --seed $(SEED) --run-dir runs/fidelity-$(PROFILE) --no-render $(addprefix --only ,$(FIDELITY_MODELS))
	$(NNLAB) compare runs/fidelity-$(PROFILE) reports/fidelity/keras-$(PROFILE).jsonl --out-dir reports/fidelity

# Regenerates the Keras trajectory fixtures that tests/keras_replay.rs replays (needs pip).
keras-replay:
	test -x $(PEER_VENV)/bin/python || (python3 -m venv $(PEER_VENV) && $(PEER_VENV)/bin/pip install tensorflow-cpu)
	$(PEER_VENV)/bin/python bench/keras_replay.py tests/fixtures/keras_replay
