# Test stub: GRAM job states as their names.
package Globus::GRAM::JobState;
use strict;
use warnings;
sub PENDING { 'PENDING' }
sub ACTIVE { 'ACTIVE' }
sub FAILED { 'FAILED' }
sub DONE { 'DONE' }
sub SUSPENDED { 'SUSPENDED' }
1;
