import Foundation
import GatewayApp
import GatewayStorage
import LTICore
import LTITestSupport
import Testing

/// Hardening M1: a learner is asserted only through the key set that first verified them.
@Suite("End to end: learners belong to the key set that verified them")
struct TrustAnchorTests {
    @Test("a second registration of the same issuer with its own key set gets learners of its own, never the first one's")
    func sameIssuerOtherKeySet() async throws {
        try await withEndToEnd { e2e in
            // A self-hosted platform keeping the cloud issuer, with keys of its own.
            let lms = "http://127.0.0.1:\(e2e.platformPort)"
            let selfHosted = TestPlatform(
                issuer: e2e.platformA.issuer, clientID: "client-self-hosted", deploymentID: "dep-self", kid: "self-key-1",
                privateKey: TestKeys.platformB)
            e2e.platformServer.publish("/jwks-self", selfHosted.jwksJSON)
            _ = try await PlatformAdministration.add(
                store: e2e.gateway.store, issuer: selfHosted.issuer, clientID: selfHosted.clientID, authURL: lms + "/auth-self",
                tokenURL: lms + "/token-self", jwksURL: lms + "/jwks-self", deployments: [selfHosted.deploymentID])

            #expect(try await e2e.fullLaunch(e2e.platformA).status == 303)
            #expect(try await e2e.fullLaunch(selfHosted).status == 303)  // the same sub, through the other key set
            let launches = try await e2e.gateway.store.recentLaunches(limit: 2)
            #expect(launches.count == 2 && launches[0].subject == launches[1].subject)
            #expect(launches[0].learnerID != launches[1].learnerID, "one learner (and one Skillable userid) for two key sets")

            let subject = launches[0].subject
            let cloud = try await e2e.gateway.store.identity(
                issuer: e2e.platformA.issuer, trustAnchor: e2e.registrationA.jwksURL, subject: subject)
            let own = try await e2e.gateway.store.identity(issuer: selfHosted.issuer, trustAnchor: lms + "/jwks-self", subject: subject)
            #expect(cloud != nil && own != nil && cloud?.id != own?.id)
        }
    }
}
