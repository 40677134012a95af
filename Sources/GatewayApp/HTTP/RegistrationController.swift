import Foundation
import Hummingbird
import LTICore
import Logging

/// `GET /lti/register`: LTI Dynamic Registration through an operator's invitation link; the LMS appends
/// `openid_configuration` and `registration_token` to the link.
struct RegistrationController: Sendable {
    let registration: DynamicRegistration
    let pages: PageRenderer

    func addRoutes(to router: Router<GatewayRequestContext>) {
        router.get("/lti/register") { request, context in
            let query = request.uri.queryParameters
            let outcome = await registration.register(
                invite: query["invite"].map(String.init), configurationURL: query["openid_configuration"].map(String.init),
                registrationToken: query["registration_token"].map(String.init), logger: context.logger)
            switch outcome {
            case .registered(let platform, let updated, let pending):
                var facts = [
                    "Platform: \(platform.issuer)", "Client id: \(platform.clientID)",
                    "Deployments: \(platform.deploymentIDs.joined(separator: ", "))",
                ]
                if pending { facts.append("Launches start once the gateway's operator approves this registration.") }
                return pages.registeredPage(
                    title: updated ? "Registration updated" : "LTI Gateway is registered",
                    message: updated
                        ? "This platform was registered before; its endpoints and deployments are now up to date."
                        : "The gateway is installed as an LTI 1.3 tool. Add labs to a course with the tool's content selection.",
                    facts: facts)
            case .refused(let status, let message):
                throw GatewayError(
                    code: .registrationRefused, status: .init(code: status), title: "Registration not completed",
                    message: message + " Nothing was stored.")
            }
        }
    }
}
