import AsyncHTTPClient
import Foundation
import GatewayStorage
import Logging
import SkyPrep
import Testing

@testable import GatewayApp

@Suite("SkyPrep options per platform")
struct SkyPrepAccountTests {
    func clients(_ http: HTTPClient, secrets: [String: String]) -> SkyPrepAccountClients {
        let base = SkyPrepClient(
            http: http,
            settings: .init(
                baseURL: { "https://api.skyprep.io/admin/api" }, acctKey: "main.skyprepapp.com",
                apiKey: "MAIN-KEY"), logger: Logger(label: "t"))
        return SkyPrepAccountClients(defaultClient: base, defaultAcctKey: "main.skyprepapp.com", secret: { secrets[$0] })
    }

    @Test("a platform's own account reads its API key from the variable it names; a missing variable is a configuration error")
    func accountKeys() async throws {
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        let clients = clients(http, secrets: ["SKYPREP_API_KEY_ACME": "ACME-KEY", "GATEWAY_KEY_ENCRYPTION_KEY": "KEK"])
        let main = try clients.client(for: PlatformSkyPrepOptions())
        #expect(main.settings.acctKey == "main.skyprepapp.com" && main.settings.apiKey == "MAIN-KEY")
        let acme = try clients.client(for: PlatformSkyPrepOptions(account: "acme.skyprepapp.com", apiKeyVariable: "SKYPREP_API_KEY_ACME"))
        #expect(acme.settings.acctKey == "acme.skyprepapp.com" && acme.settings.apiKey == "ACME-KEY")
        #expect(throws: SkyPrepProvisioningError.self) {
            _ = try clients.client(for: PlatformSkyPrepOptions(account: "x.skyprepapp.com", apiKeyVariable: "SKYPREP_API_KEY_X"))
        }
        // Options stored before the naming rule cannot send another secret to SkyPrep, even when it is set.
        #expect(throws: SkyPrepProvisioningError.self) {
            _ = try clients.client(for: PlatformSkyPrepOptions(account: "x.skyprepapp.com", apiKeyVariable: "GATEWAY_KEY_ENCRYPTION_KEY"))
        }
        try await http.shutdown()
    }

    @Test("roles map by vocabulary: a short name matches only a course role; of several matches the least privileged wins")
    func roleMapping() {
        let membership = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
        let institution = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#"
        let options = PlatformSkyPrepOptions(roleMap: [
            "Instructor": "manager", "ContentDeveloper": "content_manager", institution + "Administrator": "admin",
        ])
        // An institution-level Instructor launching as a learner in this course stays a learner.
        #expect(options.skyPrepRole(for: [institution + "Instructor", membership + "Learner"]) == "learner")
        #expect(options.skyPrepRole(for: ["http://purl.imsglobal.org/vocab/lis/v2/system/person#Instructor"]) == "learner")
        #expect(options.skyPrepRole(for: [membership + "Instructor"]) == "manager")
        #expect(options.skyPrepRole(for: ["Instructor"]) == "manager")  // a bare legacy name is a course role
        // Several apply: the least privileged, whatever the order.
        #expect(options.skyPrepRole(for: [membership + "Instructor", membership + "ContentDeveloper"]) == "content_manager")
        #expect(options.skyPrepRole(for: [membership + "ContentDeveloper", membership + "Instructor"]) == "content_manager")
        // A full URI in the map matches exactly that role.
        #expect(options.skyPrepRole(for: [institution + "Administrator"]) == "admin")
        #expect(options.skyPrepRole(for: [membership + "Administrator"]) == "learner")
        #expect(options.skyPrepRole(for: []) == "learner")
    }

    @Test("options are validated: roles, synthetic domain, key variable name")
    func validation() {
        #expect(PlatformSkyPrepOptions().problem == nil)
        #expect(PlatformSkyPrepOptions(roleMap: ["Instructor": "teacher"]).problem?.contains("teacher") == true)
        #expect(PlatformSkyPrepOptions(syntheticEmailDomain: "not a domain").problem != nil)
        #expect(PlatformSkyPrepOptions(apiKeyVariable: "lower-case").problem != nil)
        // Only SKYPREP_API_KEY_… names: another variable could hold any secret, which would be sent to SkyPrep.
        for other in ["GATEWAY_KEY_ENCRYPTION_KEY", "GATEWAY_DATABASE_PASSWORD", "SKILLABLE_API_KEY", "SKYPREP_API_KEYS", "SKYPREP_API_KEY_"] {
            #expect(PlatformSkyPrepOptions(apiKeyVariable: other).problem != nil, "\(other)")
        }
        #expect(PlatformSkyPrepOptions(apiKeyVariable: "SKYPREP_API_KEY").problem == nil)
        let mapped = PlatformSkyPrepOptions(roleMap: [
            "Instructor": "manager", "http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator": "admin",
        ])
        #expect(mapped.skyPrepRole(for: ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"]) == "manager")
        #expect(mapped.skyPrepRole(for: ["http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator"]) == "admin")
        #expect(mapped.skyPrepRole(for: ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"]) == "learner")
    }
}
