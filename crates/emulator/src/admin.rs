//! `/_emulator/*`: test hooks for an emulator running as a separate process. No auth, never
//! counted, never rate limited.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use crate::{
    Emulator, Faults, GroupRecord, RequestRecord, Seed, SeedReport, Stats, TeamRecord, UserRecord,
};

pub async fn stats(State(emu): State<Emulator>) -> Json<Stats> {
    Json(emu.stats())
}

pub async fn reset_stats(State(emu): State<Emulator>) -> StatusCode {
    emu.reset_stats();
    StatusCode::NO_CONTENT
}

pub async fn requests(State(emu): State<Emulator>) -> Json<Vec<RequestRecord>> {
    Json(emu.requests())
}

pub async fn users(State(emu): State<Emulator>) -> Json<Vec<UserRecord>> {
    Json(emu.users())
}

pub async fn groups(State(emu): State<Emulator>) -> Json<Vec<GroupRecord>> {
    Json(emu.groups())
}

pub async fn teams(State(emu): State<Emulator>) -> Json<Vec<TeamRecord>> {
    Json(emu.teams())
}

pub async fn faults(State(emu): State<Emulator>) -> Json<Faults> {
    Json(emu.faults())
}

pub async fn set_faults(State(emu): State<Emulator>, Json(faults): Json<Faults>) -> StatusCode {
    emu.set_faults(faults);
    StatusCode::NO_CONTENT
}

pub async fn seed(State(emu): State<Emulator>, Json(seed): Json<Seed>) -> Json<SeedReport> {
    Json(emu.seed(&seed))
}
