Feature: Flag metadata

  # flagops' translation of flagd-testbed gherkin/metadata.feature. flagops flags carry
  # no metadata of their own: a result's metadata says which step decided (source) and
  # whether the on path was taken (enabled), unless the provider leaves it out.

  Scenario Outline: Returns the metadata of the step that decided
    Given a stable flagops provider
    And a <type>-flag with key "<key>" and a default value "<default>"
    And a context containing a key "email", with type "String" and with value "ballmer@macrosoft.com"
    When the flag was evaluated with details
    Then the resolved metadata should contain
      | key     | metadata_type | value     |
      | source  | String        | <source>  |
      | enabled | Boolean       | <enabled> |

    Examples:
      | key                        | type    | default | source      | enabled |
      | boolean-flag               | Boolean | false   | default     | true    |
      | boolean-targeted-zero-flag | Boolean | true    | rule:zero   | false   |
      | disabled-string-flag       | String  | bye     | kill-switch | false   |

  Scenario: Returns no metadata
    Given a stable flagops provider without flag metadata
    And a Boolean-flag with key "boolean-flag" and a default value "true"
    When the flag was evaluated with details
    Then the resolved metadata is empty

  @skip-flag-metadata
  Scenario: Returns metadata
    Given a stable flagops provider
    And a Boolean-flag with key "metadata-flag" and a default value "true"

  @skip-flag-sets
  Scenario: Returns flag set metadata
    Given a Boolean-flag with key "only-set-metadata-flag" and a default value "true"

  @skip-flag-sets
  Scenario: Flag metadata overwrites flag set metadata
    Given a Boolean-flag with key "combined-metadata-flag" and a default value "true"
