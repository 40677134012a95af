import Foundation
import Hummingbird
import Logging

/// The too-many-labs page's routes: `POST /lti/labs` (list), `/lti/labs/resume`, `/lti/labs/end` (with
/// confirmation), `/lti/labs/launch`. Each reads the form, asks ``LabChoices`` or ``LabLauncher`` and maps
/// the outcome.
struct LabSessionController: Sendable {
    let choices: LabChoices
    let launcher: LabLauncher
    /// The session's platform, for who may frame the page's answers.
    let registrations: RegistrationCache
    let responder: LaunchResponder
    let now: @Sendable () -> Date

    func addRoutes(to router: Router<GatewayRequestContext>) {
        router.post("/lti/labs") { request, context in
            try await self.act(request, context) { session, form, _ in
                await self.choices.choices(session, token: form["session"], now: self.now())
            }
        }
        router.post("/lti/labs/resume") { request, context in
            try await self.act(request, context) { session, form, trace in
                await self.choices.resume(session, instance: form["instance"], trace: trace)
            }
        }
        router.post("/lti/labs/end") { request, context in
            try await self.act(request, context) { session, form, trace in
                await self.choices.end(
                    session, token: form["session"] ?? "", instance: form["instance"],
                    confirmed: form["confirm"] == "yes", trace: trace, now: self.now())
            }
        }
        router.post("/lti/labs/launch") { request, context in
            // The one action that starts a lab: its page's session allows it once.
            try await self.act(request, context, forLaunch: true) { session, form, trace in
                let outcome = await self.launcher.start(session, trace: trace, now: self.now())
                // A refusal started no lab: the page's launch may be tried again.
                if case .refused = outcome { await self.choices.releaseLaunch(token: form["session"]) }
                return outcome
            }
        }
    }

    /// Reads the form and its lab-session token, runs `action` for that learner, answers its outcome.
    private func act(
        _ request: Request, _ context: GatewayRequestContext, forLaunch: Bool = false,
        _ action: (LabSession, [String: String], LaunchTrace) async throws -> LaunchOutcome
    ) async throws -> Response {
        let form = FormParameters.parse(Substring(try await FormParameters.body(of: request)))
        let session: LabSession
        do {
            session =
                forLaunch
                ? try await choices.sessionForLaunch(token: form["session"], now: now())
                : try await choices.session(token: form["session"], now: now())
        } catch let failure as LaunchFailure {
            throw GatewayError(failure)
        }
        if let registration = try await registrations.registration(id: session.registrationID) {
            context.framedBy(registration, options: try await registrations.launchOptions(registrationID: session.registrationID))
        }
        let outcome = try await action(session, form, LaunchTrace(referenceID: context.referenceID, logger: context.logger))
        return try responder.response(outcome, reference: context.referenceID, returnURL: session.returnURL)
    }
}
