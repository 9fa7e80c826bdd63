# Globus GRAM5 LRM module "localonly": jobmanager-localonly.
#
# The cloud LRM (cloud.pm) for jobs that run on never on a cloud node (Requirements: CloudNode =!= true). Same settings
# file (globus-cloud.conf). Install beside cloud.pm.

use strict;
use warnings;

use Globus::GRAM::JobManager::cloud;

package Globus::GRAM::JobManager::localonly;

our @ISA = ('Globus::GRAM::JobManager::cloud');

sub mode { return 'local_only'; }
sub default_queue { return 'local'; }

1;
