import Foundation
import Skillable

/// What a launch, or an action of the too-many-labs page, came to. Controllers only map it to a response.
enum LaunchOutcome: Sendable {
    /// Send the browser to this URL (allowed by the redirect policy).
    case redirect(String)
    /// Too many labs running (Skillable Result 2): the learner's running and saved labs, to resume or end one.
    case labChoice(LabChoice)
    /// The learner asked to end a lab: ask to confirm first.
    case confirmEnd(LabEndConfirmation)
    /// Nothing to open: why, for the learner's page.
    case refused(LaunchFailure)
}

/// The too-many-labs page's content: the learner's labs and the token its actions carry.
struct LabChoice: Sendable {
    /// The lab-session handle of the page's forms (random; see ``LabSessions``).
    var token: String
    var running: [SkillableUserLab]
    var saved: [SkillableUserLab]
    /// The name of the lab the learner just ended, if this page follows an end.
    var ended: String?
    /// The lab the page's launch starts: the LMS link's title, or its lab id.
    var labName: String
    /// When Skillable listed the labs (for "ends in 42 minutes").
    var listedAt: Date
}

/// A lab the learner is about to end.
struct LabEndConfirmation: Sendable {
    var token: String
    var lab: SkillableUserLab
}

/// Why a launch or a lab action opened nothing. Its code is stable (a log field, a metric label, the
/// launch record's outcome); the words for the learner live with the pages.
struct LaunchFailure: Error, Sendable {
    enum Code: Sendable, Equatable {
        /// The link carries no `labid`.
        case labIDMissing
        /// The link's `labid` is not a lab number.
        case labIDInvalid
        /// Skillable answered with a result other than success (and none the gateway handles itself).
        case skillableResult(SkillableLaunchResult)
        /// Skillable answered `Result` 0 for a lab profile that is not among its launchable ones (it does not exist,
        /// is disabled, or is not Complete).
        case labUnavailable
        /// Skillable did not answer in time.
        case skillableUnavailable
        /// A vendor answered with a URL the gateway does not send learners to.
        case labURLRefused
        /// The LMS shares no email, which SkyPrep needs.
        case skyPrepEmailMissing
        /// SkyPrep has the learner's email on an account that is not theirs.
        case skyPrepEmailInUse
        /// The link names a SkyPrep course the platform does not allow.
        case skyPrepCourseNotAllowed
        /// SkyPrep knows no account this gateway created or linked for the learner (provisioning off).
        case skyPrepAccountNotLinked
        /// SkyPrep did not answer.
        case skyPrepUnavailable
        /// SkyPrep answered with a URL the gateway does not send learners to.
        case skyPrepURLRefused
        /// The too-many-labs page's token is not one of ours.
        case labSessionInvalid
        /// The too-many-labs page's token has expired.
        case labSessionExpired
        /// The too-many-labs page's launch has been used already (it starts one lab).
        case labSessionUsed
        /// An action names no lab.
        case labInstanceMissing
        /// An action names a lab that is not among this learner's running or saved labs.
        case labInstanceNotYours
        /// The database cannot take the write this needs right now (the too-many-labs page's session).
        case storageUnavailable
        /// The gateway itself failed.
        case gatewayFault

        /// The stable identifier, e.g. `labid_missing`, `skillable_result_3`.
        var identifier: String {
            switch self {
            case .labIDMissing: "labid_missing"
            case .labIDInvalid: "labid_invalid"
            case .skillableResult(let result): "skillable_result_\(result.code)"
            case .labUnavailable: "lab_unavailable"
            case .skillableUnavailable: "skillable_unavailable"
            case .labURLRefused: "lab_url_refused"
            case .skyPrepEmailMissing: "skyprep_email_missing"
            case .skyPrepEmailInUse: "skyprep_email_in_use"
            case .skyPrepCourseNotAllowed: "skyprep_course_not_allowed"
            case .skyPrepAccountNotLinked: "skyprep_account_not_linked"
            case .skyPrepUnavailable: "skyprep_unavailable"
            case .skyPrepURLRefused: "skyprep_url_refused"
            case .labSessionInvalid: "lab_session_invalid"
            case .labSessionExpired: "lab_session_expired"
            case .labSessionUsed: "lab_session_used"
            case .labInstanceMissing: "lab_instance_missing"
            case .labInstanceNotYours: "lab_instance_not_yours"
            case .storageUnavailable: "storage_unavailable"
            case .gatewayFault: "internal_error"
            }
        }
    }

    var code: Code
    /// For the log only.
    var underlying: (any Error)?

    init(_ code: Code, underlying: (any Error)? = nil) {
        self.code = code
        self.underlying = underlying
    }
}
