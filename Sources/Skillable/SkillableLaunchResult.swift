/// The `Result` of a Lab on Demand API v3 `Launch` (vendor-apis.md, "Launch `Result` codes").
public enum SkillableLaunchResult: Sendable, Equatable, Hashable, CustomStringConvertible {
    case error
    case success
    case userTooManyActiveLabs
    case insufficientHostResources
    case apiIntegrationTooManyActiveLabs
    case userHasSavedInstance
    case apiIntegrationLacksRAM
    case userLacksRAM
    case organizationTooManyActiveLabs
    case organizationLacksRAM
    case labProfileTooManyActiveInstances
    case labOrganizationLacksRAM
    case labOrganizationTooManyActiveInstances
    case labSeriesTooManyActiveInstances
    case labSeriesLacksRAM
    case classTooManyLabs
    case userReachedProfileMaximum
    case notAvailableThroughAPI(Int)
    case labInstanceWrongState
    case invalidRequest
    case sharedClassEnvironmentUnavailable
    case userMustProvideMoreInformation
    /// A code this client does not know; kept raw for operators.
    case unknown(Int)

    public init(code: Int) {
        switch code {
        case 0: self = .error
        case 1: self = .success
        case 2: self = .userTooManyActiveLabs
        case 3: self = .insufficientHostResources
        case 5: self = .apiIntegrationTooManyActiveLabs
        case 6: self = .userHasSavedInstance
        case 7: self = .apiIntegrationLacksRAM
        case 10: self = .userLacksRAM
        case 20: self = .organizationTooManyActiveLabs
        case 30: self = .organizationLacksRAM
        case 40: self = .labProfileTooManyActiveInstances
        case 50: self = .labOrganizationLacksRAM
        case 60: self = .labOrganizationTooManyActiveInstances
        case 70: self = .labSeriesTooManyActiveInstances
        case 80: self = .labSeriesLacksRAM
        case 90: self = .classTooManyLabs
        case 100: self = .userReachedProfileMaximum
        case 110, 130: self = .notAvailableThroughAPI(code)
        case 120: self = .labInstanceWrongState
        case 140: self = .invalidRequest
        case 150: self = .sharedClassEnvironmentUnavailable
        case 160: self = .userMustProvideMoreInformation
        default: self = .unknown(code)
        }
    }

    /// The raw code Skillable sent.
    public var code: Int {
        switch self {
        case .error: 0
        case .success: 1
        case .userTooManyActiveLabs: 2
        case .insufficientHostResources: 3
        case .apiIntegrationTooManyActiveLabs: 5
        case .userHasSavedInstance: 6
        case .apiIntegrationLacksRAM: 7
        case .userLacksRAM: 10
        case .organizationTooManyActiveLabs: 20
        case .organizationLacksRAM: 30
        case .labProfileTooManyActiveInstances: 40
        case .labOrganizationLacksRAM: 50
        case .labOrganizationTooManyActiveInstances: 60
        case .labSeriesTooManyActiveInstances: 70
        case .labSeriesLacksRAM: 80
        case .classTooManyLabs: 90
        case .userReachedProfileMaximum: 100
        case .notAvailableThroughAPI(let code): code
        case .labInstanceWrongState: 120
        case .invalidRequest: 140
        case .sharedClassEnvironmentUnavailable: 150
        case .userMustProvideMoreInformation: 160
        case .unknown(let code): code
        }
    }

    /// The class of cause, for the page the learner sees.
    public enum Cause: String, Sendable {
        case launched, capacity, limits, savedLab = "saved_lab", notAvailable = "not_available"
        case invalidRequest = "invalid_request", needsInformation = "needs_information", failed
    }

    public var cause: Cause {
        switch self {
        case .success: .launched
        case .insufficientHostResources, .apiIntegrationLacksRAM, .userLacksRAM, .organizationLacksRAM,
            .labOrganizationLacksRAM, .labSeriesLacksRAM, .sharedClassEnvironmentUnavailable:
            .capacity
        case .userTooManyActiveLabs, .apiIntegrationTooManyActiveLabs, .organizationTooManyActiveLabs,
            .labProfileTooManyActiveInstances, .labOrganizationTooManyActiveInstances, .labSeriesTooManyActiveInstances,
            .classTooManyLabs, .userReachedProfileMaximum:
            .limits
        case .userHasSavedInstance: .savedLab
        case .notAvailableThroughAPI, .labInstanceWrongState: .notAvailable
        case .invalidRequest: .invalidRequest
        case .userMustProvideMoreInformation: .needsInformation
        case .error, .unknown: .failed
        }
    }

    public var description: String { "\(code)" }
}
