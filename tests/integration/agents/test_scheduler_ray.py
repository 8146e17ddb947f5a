"""The scheduler as a supervised Ray actor: found by the supervisor like a shard, runs a job on request and logs it."""

from __future__ import annotations

import sys
from functools import partial

from agents.scheduler import Job
from agents.scheduler_jobs import start_scheduler
from agents.supervisor import AgentSupervisor
from data.log import open_log


def _say(text: str) -> str:
    return text


def _jobs() -> list[Job]:
    return [Job("hello", "0 3 * * *", partial(_say, "hello from the actor"), "a test job")]


def test_the_scheduler_actor_runs_a_job_and_the_supervisor_sees_it(ray_cluster, log_url: str) -> None:
    ray = ray_cluster
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import a test module by name
    handle = start_scheduler(log_url, namespace="sched-test", interval_s=0.2, build_jobs=_jobs)
    (job,) = ray.get(handle.jobs.remote(), timeout=60)
    assert job["name"] == "hello" and job["last"] is None
    run = ray.get(handle.run.remote("hello"), timeout=60)
    assert run["outcome"] == "ok" and run["summary"] == "hello from the actor" and run["trigger"] == "manual"
    log = open_log(log_url)
    assert [e.properties["job"] for e in log.read(0, 100, ["schedule_run"]).events] == ["hello"]
    log.close()
    sup = AgentSupervisor.attach("sched-test")
    (status,) = sup.status()
    assert status["agent"] == "scheduler" and status["running"] and status["events"] == 1
    assert sup.down() == 1
