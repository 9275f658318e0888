"""Everyone's pages: sign up, sign in (/login), sign out, reset a forgotten password, the account
page, and deleting the account with all its data."""

from __future__ import annotations

import logging
import smtplib
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from search_party.community import accounts, notifications
from search_party.community.accounts import RESET_TOKEN_TTL
from search_party.errors import UserError
from web.access import SignedInUser, current_user_id, login_required, safe_next
from web.db import get_db, settings
from web.extensions import (
    RESET_LIMIT,
    SIGN_IN_LIMIT,
    SIGN_IN_PER_ACCOUNT_LIMIT,
    SIGN_UP_LIMIT,
    email_tried,
    limiter,
)
from web.forms import DeleteAccountForm, ResetPasswordForm, ResetRequestForm, SignInForm, SignUpForm

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)

RESET_SENT = ("If an account has this e-mail address, a link to choose a new password is on its way. "
              f"It works once, for {int(RESET_TOKEN_TTL.total_seconds() // 60)} minutes. "
              "Check your spam folder if it has not arrived in a few minutes.")


def _sign_in(account: accounts.Account) -> None:
    session.clear()  # a fresh session (and CSRF token) for the signed-in user
    login_user(SignedInUser(account))


def _after_sign_in() -> Any:
    return redirect(safe_next(request.args.get("next")) or url_for("neighbour.cameras"))


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit(SIGN_UP_LIMIT, methods=["POST"])
def signup() -> Any:
    if current_user.is_authenticated:
        return redirect(url_for("neighbour.cameras"))
    form = SignUpForm()
    error = None
    if form.validate_on_submit():
        try:
            account = accounts.create_user(get_db(), form.email.data, form.password.data,
                                        display_name=form.display_name.data or "")
        except UserError as exc:
            error = str(exc)
        else:
            _sign_in(account)
            flash("Welcome to Search Party. Add a camera below, or report a lost pet.", "ok")
            return _after_sign_in()
    status = 400 if request.method == "POST" else 200
    return render_template("auth/signup.html", form=form, error=error), status


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(SIGN_IN_LIMIT, methods=["POST"])
@limiter.limit(SIGN_IN_PER_ACCOUNT_LIMIT, methods=["POST"], key_func=email_tried)
def login() -> Any:
    if current_user.is_authenticated:
        return _after_sign_in()
    form = SignInForm()
    error = None
    if form.validate_on_submit():
        account = accounts.authenticate(get_db(), form.email.data, form.password.data)
        if account is not None:
            _sign_in(account)
            return _after_sign_in()
        error = "That e-mail and password do not match an account. Check them, or reset your password."
    status = 400 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form, error=error), status


@bp.post("/logout")
def logout() -> Any:
    logout_user()
    session.clear()
    flash("You are signed out.", "ok")
    return redirect(url_for("home.index"))


def _reset_link(token: str) -> str:
    path = url_for("auth.reset_password", token=token)
    base = current_app.config["PUBLIC_URL"]
    if base:
        return base.rstrip("/") + path
    # Only a local or test run builds the link from the request's Host header (in production an
    # attacker could otherwise make the e-mail point at their own site).
    if current_app.config["DEV"] or current_app.testing:
        return request.host_url.rstrip("/") + path
    raise UserError("password reset by e-mail is not set up on this server (SEARCH_PARTY_PUBLIC_URL "
                    "is missing); ask its operator")


@bp.route("/reset", methods=["GET", "POST"])
@limiter.limit(RESET_LIMIT, methods=["POST"])
def reset_request() -> Any:
    form = ResetRequestForm()
    if form.validate_on_submit():
        db = get_db()
        account = accounts.find_account(db, form.email.data)
        if account is not None and settings().smtp_host is None:
            # Without SMTP the "e-mail" would go to the log, and a reset link there lets anyone
            # who reads the log take the account: no link is made at all.
            log.warning("password reset asked for account %d, but no SMTP server is configured "
                        "(SEARCH_PARTY_SMTP_HOST), so no link was made or sent; an operator can set a "
                        "password with `search-party user password EMAIL`", account.id)
        elif account is not None:
            token = accounts.start_password_reset(db, account.email)
            assert token is not None, "the account was found a moment ago"
            # Sent now rather than through the inbox: the token must never be stored readable.
            mailer = notifications.mailer_for(settings())
            try:
                mailer.send(account.email, "Choose a new Search Party password",
                            "Someone (we hope you) asked to reset the password of this Search Party "
                            f"account. Choose a new one here:\n\n{_reset_link(token)}\n\n"
                            f"The link works once, for {int(RESET_TOKEN_TTL.total_seconds() // 60)} "
                            "minutes. If it was not you, ignore this e-mail: nothing changes.")
            except (OSError, smtplib.SMTPException) as exc:
                log.warning("password reset e-mail to account %d failed: %s", account.id, exc)
        flash(RESET_SENT, "ok")
        return redirect(url_for("auth.login"))
    return render_template("auth/reset_request.html", form=form), 400 if request.method == "POST" else 200


@bp.route("/reset/<token>", methods=["GET", "POST"])
@limiter.limit(RESET_LIMIT, methods=["POST"])
def reset_password(token: str) -> Any:
    form = ResetPasswordForm()
    error = None
    if form.validate_on_submit():
        try:
            accounts.reset_password(get_db(), token, form.password.data)
        except UserError as exc:
            error = str(exc)
        else:
            logout_user()
            session.clear()
            flash("Your password is changed. Sign in with the new one.", "ok")
            return redirect(url_for("auth.login"))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/reset_password.html", form=form, error=error), status


@bp.get("/account")
@login_required
def account() -> Any:
    return render_template("auth/account.html", account=accounts.get_account(get_db(), current_user_id()))


@bp.route("/account/delete", methods=["GET", "POST"])
@login_required
def delete_account() -> Any:
    form = DeleteAccountForm()
    error = None
    if form.validate_on_submit():
        db = get_db()
        if accounts.authenticate(db, current_user.email, form.password.data) is None:
            error = "That password is not right; nothing was deleted."
        else:
            erasure = accounts.delete_account(db, current_user_id(), index_path=settings().index_path)
            logout_user()
            session.clear()
            flash(f"Your account is deleted, with {erasure.cameras} camera(s), {erasure.sightings} "
                  f"sighting(s), {erasure.lost_reports} lost and {erasure.found_reports} found "
                  "report(s) and your messages.", "ok")
            return redirect(url_for("home.index"))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/delete.html", form=form, error=error), status
