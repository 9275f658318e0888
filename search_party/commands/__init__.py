"""Subcommands of `search-party`, one module per area."""

from search_party.commands.agent import agent
from search_party.commands.audit import audit
from search_party.commands.backup import backup, restore
from search_party.commands.bench import bench
from search_party.commands.bench_ingest import ingest as bench_ingest
from search_party.commands.bench_load import load as bench_load
from search_party.commands.demo import demo
from search_party.commands.detect import detect
from search_party.commands.domain import activity_log, consent_group, inbox, report, retention_group, user
from search_party.commands.ingest import camera, clips, ingest, worker
from search_party.commands.models import models
from search_party.commands.reid import eval_group, train_command
from search_party.commands.search_tools import bench_search, eval_search
from search_party.commands.setup import setup

COMMANDS = [setup, models, detect, bench, camera, ingest, clips, worker, eval_group, train_command, agent,
            user, report, consent_group, inbox, activity_log, retention_group, audit,
            backup, restore, demo]

bench.add_command(bench_ingest)
bench.add_command(bench_load)
bench.add_command(bench_search)
eval_group.add_command(eval_search)
