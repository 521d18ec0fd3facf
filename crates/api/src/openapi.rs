//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use utoipa::OpenApi;

use crate::error::{ErrorBody, ErrorCode};
use crate::model::{
    DelegationCheck, DelegationPublic, FpDescription, FpDetailsPublic, OverallStatsPublic,
    Pagination, StakerStatsPublic, StatePublic, TermsBody, TermsStatus, TransactionPublic,
    UnbondingRequestBody, UtxoIn, UtxoOut, VerifyUtxosBody,
};

/// Every route of the v1 API.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Staking API (v1)",
        description = "Phase-1 Bitcoin staking API, wire-compatible with staking-api-service v0.3.8."
    ),
    paths(
        crate::handlers::healthcheck,
        crate::handlers::staker_delegations,
        crate::handlers::delegation,
        crate::handlers::eligibility,
        crate::unbonding::unbonding,
        crate::handlers::global_params,
        crate::handlers::finality_providers,
        crate::handlers::stats,
        crate::handlers::staker_stats,
        crate::handlers::delegation_check,
        crate::handlers::pubkey_lookup,
        crate::ordinals::log_terms,
        crate::ordinals::verify_utxos,
    ),
    components(schemas(
        ErrorBody,
        ErrorCode,
        DelegationPublic,
        TransactionPublic,
        StatePublic,
        FpDetailsPublic,
        FpDescription,
        OverallStatsPublic,
        StakerStatsPublic,
        DelegationCheck,
        Pagination,
        UnbondingRequestBody,
        TermsBody,
        TermsStatus,
        VerifyUtxosBody,
        UtxoIn,
        UtxoOut
    ))
)]
pub struct ApiDoc;
