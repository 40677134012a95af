import Foundation
import GatewaySupport
import HTTPTypes
import Hummingbird
import Skillable

/// Maps a ``LaunchOutcome`` to what the browser gets: a `303`, the too-many-labs page, the confirmation
/// page, or — for a refusal — a ``GatewayError`` that the error middleware renders and logs.
struct LaunchResponder: Sendable {
    let pages: PageRenderer
    let baseURL: String
    /// Where the too-many-labs page's answers may send the browser (its Launch and Resume redirect into a lab).
    let labForms: FormTargets

    /// The answer to `outcome`; `returnURL` is the launch's way back to its course (``CourseReturn``), linked from its pages.
    func response(_ outcome: LaunchOutcome, reference: String, returnURL: String?) throws -> Response {
        let returnURL = CourseReturn.url(returnURL)
        switch outcome {
        case .redirect(let url):
            return Response(status: .seeOther, headers: [.location: url, .cacheControl: "no-store"])
        case .labChoice(let choice):
            func rows(_ list: [SkillableUserLab]) -> [[String: Any]] {
                list.map { lab in
                    [
                        "id": String(lab.labInstanceID), "name": lab.labProfileName ?? "Lab \(lab.labProfileID.map(String.init) ?? "")",
                        "start": Self.format(lab.start), "expires": Self.format(lab.expires), "base": baseURL, "session": choice.token,
                        "startISO": Self.iso(lab.start), "expiresISO": Self.iso(lab.expires),
                        "expiresRelative": Self.relative(lab.expires, now: choice.listedAt),
                    ]
                }
            }
            var values: [String: Any] = [
                "title": choice.ended.map { "\($0) has ended" } ?? "You have too many labs running",
                "ended": choice.ended != nil,
                "advice": choice.ended == nil
                    ? "Skillable allows only a few labs at a time. Resume one of your labs, or end one you no longer need and then launch \(choice.labName)."
                    : "You can launch \(choice.labName) now. If Skillable still counts too many labs, end another one first.",
                "labName": choice.labName, "base": baseURL, "session": choice.token,
                "running": rows(choice.running), "saved": rows(choice.saved), "hasRunning": !choice.running.isEmpty,
                "hasSaved": !choice.saved.isEmpty, "hasLabs": !(choice.running.isEmpty && choice.saved.isEmpty), "reference": reference,
            ]
            if let returnURL { values["returnURL"] = returnURL }
            return pages.labsPage(values, formAction: labForms.formAction)
        case .confirmEnd(let confirmation):
            let name = confirmation.lab.labProfileName ?? "this lab"
            var values: [String: Any] = [
                "title": "End \(name)?", "name": name, "base": baseURL, "session": confirmation.token,
                "id": String(confirmation.lab.labInstanceID), "reference": reference,
            ]
            if let returnURL { values["returnURL"] = returnURL }
            return pages.confirmEndPage(values)
        case .refused(let failure):
            var error = GatewayError(failure)
            error.returnURL = returnURL
            throw error
        }
    }

    /// A lab's start or end time for the page without script, e.g. `4 Dec 2026, 14:05 UTC` (its script shows the
    /// learner's own time zone instead).
    static func format(_ unixSeconds: Int64?) -> String {
        guard let unixSeconds else { return "—" }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "d MMM yyyy, HH:mm 'UTC'"
        return formatter.string(from: Date(timeIntervalSince1970: Double(unixSeconds)))
    }

    /// The time as ISO 8601 for `<time datetime>`, empty when unknown.
    static func iso(_ unixSeconds: Int64?) -> String {
        unixSeconds.map { Date(timeIntervalSince1970: Double($0)).formatted(.iso8601) } ?? ""
    }

    /// How far `unixSeconds` lies ahead of `now` in words: `in 42 minutes`, `in 3 hours`, `in 2 days`, `now`.
    static func relative(_ unixSeconds: Int64?, now: Date) -> String {
        guard let unixSeconds else { return "at an unknown time" }
        let minutes = Int(((Double(unixSeconds) - now.timeIntervalSince1970) / 60).rounded())
        func count(_ value: Int, _ unit: String) -> String { "in \(value) \(unit)\(value == 1 ? "" : "s")" }
        switch minutes {
        case ..<1: return "now"
        case ..<120: return count(minutes, "minute")
        case ..<(48 * 60): return count(minutes / 60, "hour")
        default: return count(minutes / (24 * 60), "day")
        }
    }
}

/// The learner's way back to the course: the validated launch's `launch_presentation.return_url` (LTI Core 5.4.1:
/// the platform's own page to return to), linked only when it is an https URL (or http on this machine).
enum CourseReturn {
    static func url(_ raw: String?) -> String? {
        guard let raw, SecureURL.parse(raw) != nil else { return nil }
        return raw
    }
}

extension GatewayError {
    /// The learner's page for a launch that opened nothing: plain words by cause, the failure's stable code.
    init(_ failure: LaunchFailure) {
        let code = GatewayError.Code(failure.code)
        func page(_ status: HTTPResponse.Status, _ title: String, _ message: String) -> GatewayError {
            GatewayError(code: code, status: status, title: title, message: message, underlying: failure.underlying)
        }
        switch failure.code {
        case .labIDMissing:
            self = page(
                .badRequest, "This link does not name a lab",
                "The LMS link has no custom parameter labid. Ask your instructor or LMS administrator to set labid=<Skillable lab id> on this link.")
        case .labIDInvalid:
            self = page(
                .badRequest, "This link names an invalid lab",
                "The LMS link's labid is not a Skillable lab number. Ask your instructor to correct the link.")
        case .labUnavailable:
            self = page(
                .badRequest, "This lab is not available",
                "Skillable, which runs the labs, has no lab that this link can start: the lab may have been removed or not released yet. Opening it again will not help: please tell your instructor, with the reference below."
            )
        case .skillableUnavailable:
            self = page(
                .badGateway, "The lab service is not answering",
                "Skillable, which runs the labs, did not answer. No lab was started. Please try again in a few minutes.")
        case .labURLRefused:
            self = page(
                .badGateway, "The lab could not be opened",
                "The lab service answered with an address this gateway does not send learners to. Please tell your instructor, with the reference below."
            )
        case .skillableResult(let result):
            switch result.cause {
            case .capacity:
                self = page(
                    .serviceUnavailable, "No lab capacity right now",
                    "The lab service has no room to start this lab at the moment. Please try again in a few minutes.")
            case .limits:
                self = page(
                    .conflict, "Too many labs running",
                    "A limit on running labs has been reached. Close a lab you no longer need, or try again later.")
            case .savedLab:
                self = page(
                    .conflict, "You have a saved copy of this lab",
                    "You saved this lab earlier. Resume it from the lab service, or ask your instructor for help.")
            case .notAvailable:
                self = page(
                    .serviceUnavailable, "This lab is not available",
                    "This lab cannot be started through the LMS right now. Please tell your instructor.")
            case .invalidRequest:
                self = page(
                    .badGateway, "The lab could not be started",
                    "The lab service refused the request for this lab. Please tell your instructor; the lab link may be wrong.")
            case .needsInformation:
                self = page(
                    .conflict, "More information needed",
                    "The lab service needs more information about you before this lab can start. Please contact your instructor.")
            case .failed, .launched:
                self = page(
                    .badGateway, "The lab could not be started",
                    "The lab service could not start this lab. Please try again; if it keeps happening, tell your instructor.")
            }
        case .skyPrepEmailMissing:
            self = page(
                .badRequest, "Your LMS does not share your email",
                "SkyPrep accounts are identified by email address. Ask your LMS administrator to share learners' email with this tool.")
        case .skyPrepEmailInUse:
            self = page(
                .conflict, "Your email belongs to another SkyPrep account",
                "SkyPrep already has an account with your email address that is not linked to your LMS account. An administrator can link them.")
        case .skyPrepCourseNotAllowed:
            self = page(
                .forbidden, "This link names a SkyPrep course it may not use",
                "The LMS link asks to enrol you in a SkyPrep course that this LMS is not allowed to enrol learners in. Tell your instructor; an administrator can allow the course."
            )
        case .skyPrepAccountNotLinked:
            self = page(
                .forbidden, "Your SkyPrep account is not linked",
                "This gateway signs you into SkyPrep only with an account it created or linked for your LMS account, and there is none yet. Ask your SkyPrep administrator to link your account."
            )
        case .skyPrepUnavailable:
            self = page(.badGateway, "SkyPrep is not available", "SkyPrep, the training platform, did not answer. Please try again in a few minutes.")
        case .skyPrepURLRefused:
            self = page(
                .badGateway, "SkyPrep could not be opened",
                "SkyPrep answered with an address this gateway does not send learners to. Please tell your instructor, with the reference below.")
        case .labSessionInvalid:
            self = page(.badRequest, "Please open the lab again", "This page is not valid. Go back to your course and open the lab again.")
        case .labSessionExpired:
            self = page(.badRequest, "Please open the lab again", "This page has expired. Go back to your course and open the lab again.")
        case .labSessionUsed:
            self = page(
                .conflict, "This lab was started already",
                "This page has already started its lab. Go back to your course and open the lab again to get to it.")
        case .labInstanceMissing:
            self = page(.badRequest, "No lab was chosen", "Go back and choose a lab.")
        case .storageUnavailable:
            self = page(
                .serviceUnavailable, "Busy for a moment", "The gateway cannot record this request right now. Please try again in a few seconds.")
        case .gatewayFault:
            self = page(
                .internalServerError, "Something went wrong",
                "The gateway could not complete this request. Please try again; if it keeps happening, give your administrator the reference below.")
        case .labInstanceNotYours:
            self = page(
                .forbidden, "This lab is not available",
                "This lab is not one of your running or saved labs (it may have ended). Go back to your course and open the lab again.")
        }
    }
}
