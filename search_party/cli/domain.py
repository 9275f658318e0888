"""`search-party user`, `report`, `consent`, `inbox`, `activity` and `retention`: the domain from
the shell, acting as the user named by --as (an e-mail).  The web app offers the same actions."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

import click
from sqlite_utils import Database

from search_party.community import (
    accounts,
    activity,
    consent,
    notifications,
    reports,
    retention,
    standing_searches,
)
from search_party.config import Settings, load_settings
from search_party.errors import NotFound, UserError
from search_party.store.db import open_db
from search_party.store.vector_index import VectorIndex
from search_party.vision import load_models


def _settings() -> Settings:
    settings = load_settings()
    settings.prepare_dirs()
    return settings


def _user_id(db: Database, email: str) -> int:
    account = accounts.find_account(db, email)
    if account is None:
        raise NotFound(f"no account has the email {email}; add it with `search-party user add {email}`")
    return account.id


def _when(text: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"{option} {text!r} is not an ISO 8601 time such as 2025-06-01T08:00+02:00") from None
    if moment.tzinfo is None:
        raise UserError(f"{option} {text!r} has no UTC offset; add one, e.g. {text}+02:00 or {text}Z")
    return moment


def _password() -> str:
    if sys.stdin.isatty():
        return click.prompt("password", hide_input=True, confirmation_prompt=True)
    return sys.stdin.readline().rstrip("\n")


def _deliver(db: Database) -> None:
    notifications.deliver_pending(db, notifications.mailer_for(_settings()))


AS_OPTION = click.option("--as", "email", required=True, metavar="EMAIL",
                         help="The account acting (its e-mail).")


# ---------------------------------------------------------------- users


@click.group()
def user() -> None:
    """Accounts: residents, shelters (approved by an admin) and admins."""


@user.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice(["resident", "admin"]), default="resident", show_default=True)
@click.option("--name", "display_name", default="", help="The name others see (never the e-mail).")
@click.option("--password", "with_password", is_flag=True,
              help="Set a password (prompted, or one line on standard input).")
def user_add(email: str, role: str, display_name: str, with_password: bool) -> None:
    """Add an account."""
    password = _password() if with_password else None
    with open_db(_settings().db_path) as db:
        account = accounts.create_user(db, email, password, role=role, display_name=display_name)
    click.echo(f"user {account.id} {account.email} ({account.role}) added")


@user.command("password")
@click.argument("email")
def user_password(email: str) -> None:
    """Set an account's password (prompted, or one line on standard input): the way to help a
    user when no SMTP server sends reset links.  Every session of the account ends."""
    password = _password()
    with open_db(_settings().db_path) as db:
        accounts.set_password(db, _user_id(db, email), password)
    click.echo(f"password of {email} set; its sessions on every device are signed out")


@user.command("shelter")
@click.argument("email")
@click.option("--name", required=True, help="The shelter's public name.")
@click.option("--lat", required=True)
@click.option("--lon", required=True)
@click.option("--service-km", type=float, default=20.0, show_default=True,
              help="Radius of the area it serves.")
def user_shelter(email: str, name: str, lat: str, lon: str, service_km: float) -> None:
    """Register a shelter; it acts as one after `search-party user approve`."""
    with open_db(_settings().db_path) as db:
        shelter = accounts.register_shelter(db, email, None, name=name, lat=lat, lon=lon,
                                         service_radius_m=service_km * 1000)
    click.echo(f"shelter {shelter.user_id} {shelter.name!r} registered, waiting for approval")


@user.command("approve")
@click.argument("email")
@click.option("--as", "admin_email", required=True, metavar="EMAIL", help="The approving admin.")
def user_approve(email: str, admin_email: str) -> None:
    """Approve a shelter (as an admin)."""
    with open_db(_settings().db_path) as db:
        shelter = accounts.approve_shelter(db, _user_id(db, email), _user_id(db, admin_email))
    click.echo(f"shelter {shelter.name!r} approved")


@user.command("delete")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def user_delete(email: str, yes: bool) -> None:
    """Delete an account and all its data: cameras, sightings, reports, messages."""
    settings = _settings()
    with open_db(settings.db_path) as db:
        user_id = _user_id(db, email)
        if not yes:
            click.confirm(f"Delete {email} and everything it holds?", abort=True)
        erased = accounts.delete_account(db, user_id, index_path=settings.index_path)
    click.echo(f"deleted {email}: {erased.cameras} camera(s), {erased.sightings} sighting(s), "
               f"{erased.lost_reports} lost and {erased.found_reports} found report(s), "
               f"{erased.messages} message(s)")


# ---------------------------------------------------------------- reports


@click.group()
def report() -> None:
    """Lost and found reports."""


@report.command("lost")
@click.argument("photos", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@AS_OPTION
@click.option("--name", "pet_name", required=True, help="The pet's name.")
@click.option("--species", type=click.Choice(reports.SPECIES), default="dog", show_default=True)
@click.option("--lat", required=True, help="Where it was last seen.")
@click.option("--lon", required=True)
@click.option("--last-seen", required=True, help="When, ISO 8601 with a UTC offset.")
@click.option("--radius", help="Search radius in metres (default 1000, at most 5000).")
@click.option("--days", type=click.IntRange(1, reports.MAX_EXPIRY.days), default=3, show_default=True,
              help="Days until the search expires (renewable).")
@click.option("--description", default="")
def report_lost(photos: tuple[Path, ...], email: str, pet_name: str, species: str, lat: str, lon: str,
                last_seen: str, radius: str | None, days: int, description: str) -> None:
    """Report a pet lost with 1-5 PHOTOS, then search the cameras nearby at once."""
    settings = _settings()
    models = load_models(settings)
    with open_db(settings.db_path) as db:
        lost, created = reports.create_lost_report(
            db, _user_id(db, email), pet_name=pet_name, species=species, photos=list(photos),
            lat=lat, lon=lon, last_seen=_when(last_seen, "--last-seen"), radius_m=radius,
            expires_in=timedelta(days=days), description=description,
            models=models)
        if not created:
            click.echo(f"lost report {lost.id} was already submitted ({lost.status})")
            return
        index = VectorIndex.open(db, settings.index_path, models.embedder.version, models.embedder.dim)
        run = standing_searches.search_report(db, lost.id, index)
        _deliver(db)
    click.echo(f"lost report {lost.id} for {lost.pet_name}: {run.sightings_compared} sighting(s) "
               f"compared, {len(run.new_matches)} likely, {len(run.asked)} request(s) sent; "
               f"expires {lost.expires:%Y-%m-%d %H:%M} UTC")


@report.command("found")
@click.argument("photos", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@AS_OPTION
@click.option("--species", type=click.Choice(reports.SPECIES), default="dog", show_default=True)
@click.option("--lat", required=True, help="Where it was found.")
@click.option("--lon", required=True)
@click.option("--found-at", required=True, help="When, ISO 8601 with a UTC offset.")
@click.option("--shelter", "as_shelter", is_flag=True, help="A shelter intake (approved shelters).")
@click.option("--description", default="")
def report_found(photos: tuple[Path, ...], email: str, species: str, lat: str, lon: str,
                 found_at: str, as_shelter: bool, description: str) -> None:
    """Report a found pet with 1-5 PHOTOS; matching lost reports nearby are told."""
    settings = _settings()
    models = load_models(settings)
    with open_db(settings.db_path) as db:
        found, created = reports.create_found_report(
            db, _user_id(db, email), species=species, photos=list(photos), lat=lat, lon=lon,
            found_at=_when(found_at, "--found-at"), as_shelter=as_shelter, description=description,
            models=models)
        _deliver(db)
        matched = db.execute("SELECT count(*) FROM matches WHERE found_report_id = ?",
                             [found.id]).fetchone()[0]
    state = "stored" if created else "was already submitted"
    click.echo(f"found report {found.id} {state}; {matched} lost report(s) may match")


@report.command("renew")
@click.argument("report_id", type=int)
@AS_OPTION
@click.option("--days", type=click.IntRange(1, reports.MAX_EXPIRY.days), default=3, show_default=True)
def report_renew(report_id: int, email: str, days: int) -> None:
    """Keep a search going (also an expired one)."""
    with open_db(_settings().db_path) as db:
        lost = reports.renew(db, report_id, _user_id(db, email), extend_by=timedelta(days=days))
    click.echo(f"lost report {lost.id} active until {lost.expires:%Y-%m-%d %H:%M} UTC")


@report.command("home")
@click.argument("report_id", type=int)
@AS_OPTION
def report_home(report_id: int, email: str) -> None:
    """Mark the pet found: the search ends and its query vectors and pending requests go."""
    with open_db(_settings().db_path) as db:
        ended = retention.mark_found(db, report_id, _user_id(db, email))
    click.echo(f"lost report {report_id} " + ("ended: found" if ended else "was already marked found"))


@report.command("list")
@AS_OPTION
def report_list(email: str) -> None:
    """Your lost and found reports."""
    with open_db(_settings().db_path) as db:
        user_id = _user_id(db, email)
        for lost in reports.list_lost_reports(db, owner_id=user_id):
            progress = consent.progress(db, lost.id, user_id)
            click.echo(f"lost {lost.id}\t{lost.pet_name} ({lost.species})\t{lost.status}\t"
                       f"expires {lost.expires:%Y-%m-%d %H:%M}\t{progress.requests_sent} request(s) "
                       f"sent, {progress.shared} shared, {progress.found_matches} found match(es)")
        for found in reports.list_found_reports(db, reporter_id=user_id):
            click.echo(f"found {found.id}\t{found.species}\t{found.status}\t{found.found_at:%Y-%m-%d %H:%M}")


@report.command("sightings")
@click.argument("report_id", type=int)
@AS_OPTION
def report_sightings(report_id: int, email: str) -> None:
    """The sightings neighbours shared with your search, oldest first, by coarse area."""
    with open_db(_settings().db_path) as db:
        for seen in consent.shared_sightings(db, report_id, _user_id(db, email)):
            click.echo(f"match {seen.match_id}\t{seen.first_time:%Y-%m-%d %H:%M}\tarea {seen.area.cell}\t"
                       f"about {seen.distance_m} m from the last-seen point\tscore {seen.score:.2f}")


# ---------------------------------------------------------------- consent


@click.group("consent")
def consent_group() -> None:
    """Answer requests to share a camera's sighting with a lost pet's owner."""


@consent_group.command("list")
@AS_OPTION
@click.option("--all", "everything", is_flag=True, help="Also answered and expired requests.")
def consent_list(email: str, everything: bool) -> None:
    """Your cameras' requests (unanswered ones unless --all)."""
    states = ("asked", "shared", "declined", "expired") if everything else ("asked",)
    with open_db(_settings().db_path) as db:
        for req in consent.requests_for_owner(db, _user_id(db, email), states=states):
            click.echo(f"match {req.match_id}\t{req.state}\t{req.pet_name} ({req.species}), last seen "
                       f"about {req.distance_m} m away\tcamera {req.camera_name or req.camera_id}\t"
                       f"filmed {req.first_time:%Y-%m-%d %H:%M}\tphotos {list(req.lost_photo_ids)}")


def _answer(match_id: int, email: str, share: bool) -> None:
    with open_db(_settings().db_path) as db:
        match = consent.answer(db, match_id, _user_id(db, email), share)
        _deliver(db)
    click.echo(f"match {match.id}: {match.state}")


@consent_group.command("share")
@click.argument("match_id", type=int)
@AS_OPTION
def consent_share(match_id: int, email: str) -> None:
    """Share this one sighting with the pet's owner."""
    _answer(match_id, email, True)


@consent_group.command("decline")
@click.argument("match_id", type=int)
@AS_OPTION
def consent_decline(match_id: int, email: str) -> None:
    """Decline: the owner is never told."""
    _answer(match_id, email, False)


# ---------------------------------------------------------------- inbox, activity, retention


@click.command()
@AS_OPTION
@click.option("--unread", is_flag=True)
def inbox(email: str, unread: bool) -> None:
    """Your messages, newest first."""
    with open_db(_settings().db_path) as db:
        for note in notifications.inbox(db, _user_id(db, email), unread_only=unread):
            mark = " " if note.read_at else "*"
            click.echo(f"{mark} {note.created:%Y-%m-%d %H:%M}\t{note.subject}\n    {note.body}")


@click.command("activity")
@AS_OPTION
@click.option("--camera", "camera_id", type=int, help="Only this camera.")
def activity_log(email: str, camera_id: int | None) -> None:
    """Which searches touched your cameras' footage, and what came of it."""
    with open_db(_settings().db_path) as db:
        for entry in activity.for_owner(db, _user_id(db, email), camera_id=camera_id):
            click.echo(f"{entry.at:%Y-%m-%d %H:%M}\t{entry.describe()}")


@click.group("retention")
def retention_group() -> None:
    """Expiry and purging (the worker runs this every minute)."""


@retention_group.command("run")
def retention_run() -> None:
    """Expire searches, purge sightings past their camera's retention, re-score new sightings."""
    settings = _settings()
    with open_db(settings.db_path) as db:
        done = retention.run(db, index_path=settings.index_path)
        standing_searches.rescore_new_sightings(db)
        _deliver(db)
    click.echo(f"{len(done.expired_searches)} search(es) expired ({done.expired_requests} request(s)); "
               f"{done.sightings_purged} sighting(s) and {done.clips_purged} clip record(s) purged; "
               f"{done.lost_reports_deleted} lost and {done.found_reports_deleted} found report(s) deleted")
