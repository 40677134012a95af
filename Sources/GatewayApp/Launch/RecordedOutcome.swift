/// What became of a launch, as its record, its counter and its log line say it. Stored as ``identifier`` (the
/// launch record's `outcome` column), so the names are stable.
enum RecordedOutcome: Sendable, Equatable {
    /// Recorded, not finished yet.
    case pending
    /// Skillable started (or resumed) the lab and the learner went in.
    case launched
    /// A second click joined a launch in flight or just finished.
    case joinedLaunch
    /// After a failure that may have reached Skillable, the learner's running lab was found and the learner went in.
    case recoveredRunning
    /// Skillable answered with a deferred-launch URL, where the learner went.
    case deferredRedirect
    /// A saved copy of the lab was resumed.
    case resumedSaved
    /// The learner was signed into SkyPrep.
    case skyPrepSignIn
    /// Nothing opened, for this reason.
    case refused(LaunchFailure.Code)

    /// The stored name, e.g. `launched`, `labid_missing`, `skillable_result_3`.
    var identifier: String {
        switch self {
        case .pending: "pending"
        case .launched: "launched"
        case .joinedLaunch: "joined_launch"
        case .recoveredRunning: "recovered_running"
        case .deferredRedirect: "deferred_redirect"
        case .resumedSaved: "resumed_saved"
        case .skyPrepSignIn: "skyprep_sso"
        case .refused(let code): code.identifier
        }
    }

    /// The `lti_launches_total` label: Skillable's many refusal results counted as one.
    var metricLabel: String {
        if case .refused(.skillableResult) = self { return "skillable_refused" }
        return identifier
    }
}
