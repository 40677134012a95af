import Foundation
import Hummingbird
import LTICore
import Skillable

/// What the picker page shows.
struct PickerView {
    var action: String
    var content: PickerContent

    var values: [String: Any] {
        var values: [String: Any] = [
            "title": "Add Skillable labs", "action": action, "session": content.sessionToken, "multiple": content.multiple,
            "lineItems": content.lineItems, "scoreMaximum": content.scoreMaximum, "createLineItem": content.createLineItem,
            "noneChosen": DeepLinkFailure(.nothingChosen).correction ?? "",
            "labs": content.labs.enumerated().map { index, p -> [String: Any] in
                [
                    "id": String(p.id), "name": p.name, "number": p.number ?? "", "description": p.description ?? "",
                    "duration": p.durationMinutes.map(String.init) ?? "?", "inputType": content.multiple ? "checkbox" : "radio",
                    "required": !content.multiple && index == 0, "checked": content.chosen.contains(String(p.id)),
                    "search": ([p.name, p.number ?? ""] + (p.tags ?? [])).joined(separator: " ").lowercased(),
                ]
            },
        ]
        if let problem = content.problem { values["problem"] = problem }
        return values
    }
}

/// Deep linking's routes: the picker for a validated `LtiDeepLinkingRequest` (from the launch route) and
/// `POST /lti/deep-link/select`; ``LabPicker`` decides, this maps its outcome to pages.
struct DeepLinkingController: Sendable {
    let picker: LabPicker
    let pages: PageRenderer
    let baseURL: String
    let now: @Sendable () -> Date

    func addRoutes(to router: Router<GatewayRequestContext>) {
        router.post("/lti/deep-link/select") { request, context in try await self.select(request, context: context) }
    }

    /// Shows the picker for a validated deep-linking request.
    func startPicker(_ launch: ValidatedLaunch, context: GatewayRequestContext) async throws -> Response {
        try await respond(context) { try await picker.open(launch, trace: $0, now: now()) }
    }

    /// `POST /lti/deep-link/select`: the instructor's choice (or cancel) → signed response to the platform.
    func select(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let fields = FormParameters.pairs(Substring(try await FormParameters.body(of: request, limit: FormLimit.picker)))
        func first(_ name: String) -> String? { fields.first { $0.0 == name }?.1 }
        let submission = PickerSubmission(
            sessionToken: first("session"), cancelled: first("action") == "cancel",
            chosen: fields.filter { $0.0 == "lab" }.map(\.1), createLineItem: first("create_line_item") == "on",
            scoreMaximum: first("score_maximum"))
        return try await respond(context) { try await picker.submit(submission, trace: $0, now: now()) }
    }

    private func respond(_ context: GatewayRequestContext, _ body: (LaunchTrace) async throws -> PickerOutcome) async throws -> Response {
        let outcome: PickerOutcome
        do {
            outcome = try await body(LaunchTrace(referenceID: context.referenceID, logger: context.logger))
        } catch let failure as DeepLinkFailure {
            throw GatewayError(failure)
        }
        switch outcome {
        case .picker(let content):
            return pages.pickerPage(PickerView(action: baseURL + "/lti/deep-link/select", content: content))
        case .returnToPlatform(let url, let jwt, let summary):
            return pages.autoPostPage(action: url, jwt: jwt, summary: summary)
        }
    }
}

extension GatewayError {
    /// The instructor's page for a picker that could not open or a refused submission.
    init(_ failure: DeepLinkFailure) {
        let code = GatewayError.Code(failure.code)
        func reopen(_ what: String) -> GatewayError {
            GatewayError(
                code: code, status: .badRequest, title: "Please reopen the lab picker",
                message: what + " Close this window and open the lab picker again from your LMS course.")
        }
        switch failure.code {
        case .typeNotAccepted:
            self = GatewayError(
                code: code, status: .badRequest, title: "Labs cannot be added here",
                message:
                    "This place in the LMS does not accept links to activities (ltiResourceLink). Add the lab from a module, assignment or link placement instead."
            )
        case .roleNotAllowed:
            self = GatewayError(
                code: code, status: .forbidden, title: "Only instructors add labs here",
                message:
                    "Adding labs to a course is for its instructors. If you teach this course, ask your LMS administrator to give you an instructor role."
            )
        case .catalogUnavailable:
            self = GatewayError(
                code: code, status: .badGateway, title: "The lab list is not available",
                message: "Skillable, which runs the labs, did not answer. Please try again in a few minutes.", underlying: failure.underlying)
        case .nothingChosen, .tooMany, .scoreInvalid, .labUnknown, .singleOnly:
            // Normally the picker comes back with the correction; this page only when it cannot (no catalog).
            self = GatewayError(
                code: code, status: .badRequest, title: "Please correct your choice",
                message: (failure.correction ?? "") + " Open the lab picker again from your LMS course.")
        case .sessionUsed: self = reopen("This lab picker has already been used or has expired.")
        case .registrationGone: self = reopen("The LMS registration of this picker no longer exists.")
        case .sessionInvalid: self = reopen("This lab picker submission is not valid.")
        case .sessionExpired: self = reopen("This lab picker has expired.")
        }
    }
}
