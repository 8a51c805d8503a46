"""SLURM requests that fit the nodes (surroflow.stages.plan.SlurmNodes): sinfo parsing, the CPUs of
generation jobs clamped, retries' memory clamped, and the sentence that refuses the rest."""
from __future__ import annotations

import pytest

from surroflow import SurroflowError
from surroflow.stages.plan import SlurmNode, parse_sinfo, slurm_allocation

#: `sinfo -h -N -o "%N %c %m %P"` on the test cluster of tests/hpc/local_slurm.sh
TWO_CPUS = "vm 2 21694 debug*\n"
#: a site cluster: a default partition of 32-core nodes, a big-memory one, a GPU one; node c03
#: in two partitions; a blank line
SITE = """\
c01 32 190000 compute*
c02 32 190000 compute*
c03 32 190000 compute*
c03 32 190000 long

m01 64 1500000 bigmem
g01 16 380000 gpu
"""


def test_sinfo_of_the_two_cpu_test_node():
    nodes = parse_sinfo(TWO_CPUS)
    assert nodes.default == "debug"
    assert nodes.partitions == {"debug": (SlurmNode("vm", 2, 21694),)}
    assert nodes.largest() == ("debug", SlurmNode("vm", 2, 21694))


def test_sinfo_of_a_multi_partition_cluster():
    nodes = parse_sinfo(SITE)
    assert nodes.default == "compute"
    assert set(nodes.partitions) == {"compute", "long", "bigmem", "gpu"}
    assert [n.name for n in nodes.nodes()[1]] == ["c01", "c02", "c03"]
    assert nodes.nodes("bigmem,gpu") == ("bigmem,gpu", (SlurmNode("m01", 64, 1500000), SlurmNode("g01", 16, 380000)))
    assert nodes.nodes("nosuch") is None          # sbatch names an unknown partition itself
    # no default partition: every node (c03 once)
    assert [n.name for n in parse_sinfo(SITE.replace("*", "")).nodes()[1]] == ["c01", "c02", "c03", "m01", "g01"]


@pytest.mark.parametrize("text", ["vm 2 debug*", "vm two 21694 debug*"])
def test_unreadable_sinfo_line_is_named(text):
    with pytest.raises(SurroflowError, match="sinfo: cannot read the node line"):
        parse_sinfo(text)


def test_sinfo_without_nodes_is_refused():
    with pytest.raises(SurroflowError, match="sinfo lists no node"):
        parse_sinfo("\n")


def test_generation_cpus_are_clamped_to_the_largest_node_with_a_line_saying_so():
    nodes = parse_sinfo(TWO_CPUS)
    granted, note = nodes.cpus("generate_batch", 4)
    assert granted == 2
    assert note == ("SLURM: generate_batch asks for 4 CPUs, but the largest node of partition debug, vm, "
                    "has 2: its jobs get 2 CPUs (threads and cpus_per_task; fewer dask workers, the same results)")
    assert nodes.cpus("generate_batch", 2) == (2, None)
    assert nodes.cpus("generate_batch", 1) == (1, None)
    # a partition of bigger nodes: nothing to clamp; an unknown partition: left to sbatch
    site = parse_sinfo(SITE)
    assert site.cpus("generate_batch", 48) == (32, site.cpus("generate_batch", 48)[1])
    assert site.cpus("generate_batch", 48, "bigmem") == (48, None)
    assert site.cpus("generate_batch", 48, "nosuch") == (48, None)


def test_cpus_of_other_rules_are_not_clamped_but_refused():
    nodes = parse_sinfo(TWO_CPUS)
    assert nodes.cpus("fit_pod", 4) == (4, None)      # its BLAS threads may change the basis
    why = nodes.misfit("fit_pod", 4, 8000)
    assert why == ("SLURM: rule fit_pod asks for 4 CPUs and mem_mb=8000 per job, but the largest node of "
                   "partition debug is vm with 2 CPUs and 21694 MB, so its jobs would wait in the queue "
                   "forever: ask for less with --set-threads fit_pod=2 --set-resources fit_pod:cpus_per_task=2 "
                   "(or send it to a partition with bigger nodes: --set-resources fit_pod:slurm_partition=NAME)")


def test_oversized_memory_is_refused_with_the_sentence():
    nodes = parse_sinfo(TWO_CPUS)
    why = nodes.misfit("generate_batch", 2, 10_000_000)
    assert why == ("SLURM: rule generate_batch asks for 2 CPUs and mem_mb=10000000 per job, but the largest "
                   "node of partition debug is vm with 2 CPUs and 21694 MB, so its jobs would wait in the "
                   "queue forever: ask for less with --set-resources generate_batch:mem_mb=21694 (or send it "
                   "to a partition with bigger nodes: --set-resources generate_batch:slurm_partition=NAME)")
    # the first try is never clamped: a job given less memory than it asked for may fail later
    assert nodes.memory("generate_batch", 10_000_000) == (10_000_000, None)


def test_what_fits_is_left_alone():
    nodes = parse_sinfo(TWO_CPUS)
    assert nodes.misfit("generate_batch", 2, 4000) is None
    assert nodes.misfit("make_design", 1, None) is None
    assert nodes.misfit("fit_pod", 2, 21694) is None
    assert nodes.memory("fit_pod", 16000, attempt=2) == (16000, None)


def test_misfit_on_a_multi_node_cluster_names_the_node_that_comes_closest():
    site = parse_sinfo(SITE)
    # more memory than any compute node: refused there, fits the big-memory partition
    why = site.misfit("fit_pod", 2, 1_000_000)
    assert "largest node of partition compute is c01 with 32 CPUs and 190000 MB" in why
    assert "--set-resources fit_pod:mem_mb=190000 (or" in why
    assert site.misfit("fit_pod", 2, 1_000_000, "bigmem") is None
    # each alone fits a node, no node has both: the node with the memory names the CPUs to give
    why = site.misfit("train_surrogate", 32, 300_000, "bigmem,gpu")
    assert why is None        # m01 has both
    why = site.misfit("train_surrogate", 32, 300_000, "gpu")
    assert "is g01 with 16 CPUs and 380000 MB" in why and "--set-threads train_surrogate=16 " in why
    assert site.misfit("train_surrogate", 32, 300_000, "nosuch") is None


def test_a_retry_beyond_the_largest_node_gets_the_node_not_an_endless_wait():
    nodes = parse_sinfo(TWO_CPUS)
    granted, note = nodes.memory("fit_pod", 8000 * 3, attempt=3)
    assert granted == 21694
    assert note == ("SLURM: attempt 3 of fit_pod asks for mem_mb=24000, more than the largest node of "
                    "partition debug, vm, has: it gets mem_mb=21694")


def test_inside_a_job_requests_are_capped_to_the_allocation():
    env = {"SLURM_CPUS_PER_TASK": "2", "SLURM_MEM_PER_NODE": "4000"}
    assert slurm_allocation("_cores", 4, env) == 2
    assert slurm_allocation("cpus_per_task", 4, env) == 2
    assert slurm_allocation("cpus_per_task", 1, env) == 1
    assert slurm_allocation("mem_mb", 8000, env) == 4000
    assert slurm_allocation("mem_mb", 8000, {}) == 8000            # not in a job: as asked
    assert slurm_allocation("runtime", 60, env) == 60
    assert slurm_allocation("mem_mb", "<TBD>", env) == "<TBD>"
