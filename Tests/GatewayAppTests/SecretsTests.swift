import Foundation
import GatewayApp
import GatewayStoragePostgres
import LTICore
import LTITestSupport
import Sandbox
import Testing

@Suite("Secrets never leak")
struct SecretsTests {
    @Test("no log line or response body contains a token, state, nonce, cookie value or API key")
    func noSecretsInLogsOrBodies() async throws {
        try await withEndToEnd { e2e in
            var secrets: [String] = []
            var bodies: [String] = []
            let sandboxKey = try #require(e2e.gateway.skillableSandbox?.apiKey)
            secrets.append(sandboxKey)
            secrets.append(try #require(e2e.gateway.skyPrepSandbox?.apiKey))
            if e2e.onPostgreSQL {
                // The key-encryption key and the database password.
                secrets.append(try #require(e2e.settings.database.keyEncryptionKey))
                secrets.append(try #require(try e2e.settings.database.postgres?.password))
            }

            // A successful launch, refusals of several kinds, a vendor failure and a vendor refusal.
            for scenario in 0..<6 {
                let login = try await e2e.login(e2e.platformA)
                var claims = e2e.claims(e2e.platformA, login) { $0["sub"] = "secret-test-\(scenario)" }
                switch scenario {
                case 1: claims["aud"] = "other"
                case 2: claims["exp"] = (claims["iat"] as! Int) - 1000
                case 3: await e2e.gateway.skillableSandbox?.state.scriptFailures([.serverError])
                case 4: await e2e.gateway.skillableSandbox?.state.scriptLaunchResults([3])
                default: break
                }
                let token = scenario == 5 ? e2e.platformA.sign(claims, key: TestKeys.attacker) : e2e.platformA.sign(claims)
                secrets += [login.state, login.nonce, token, String(login.cookie.split(separator: "=")[1])]
                // The token's signature alone is a secret too (a log must not carry it in part).
                secrets.append(String(token.split(separator: ".")[2]))
                let response = try await e2e.launch(idToken: token, state: login.state, cookie: login.cookie)
                bodies.append(response.body)
                for (name, value) in response.headers where name.lowercased() != "set-cookie" { bodies.append("\(name): \(value)") }
            }
            #expect(e2e.logs.all.count > 20)
            for secret in secrets {
                let leakingLines = e2e.logs.lines(containing: secret)
                #expect(leakingLines.isEmpty, "a log line carries a secret: \(leakingLines.first ?? "")")
                #expect(!bodies.contains { $0.contains(secret) }, "a response carries a secret")
            }
        }
    }
}
